"""A module someone left half-edited: it does not parse (seeded on purpose)."""


def ok() -> int:
    return 1


def half_done(x: int) -> int:
    if x > 1  # seeded: syntax-error
        return x
    return 0
