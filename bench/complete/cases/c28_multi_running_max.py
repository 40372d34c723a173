def running_max(xs: list[int]) -> list[int]:
    """The largest value seen so far at each position."""
    out: list[int] = []
    best = None
    for x in xs:
        <CURSOR>
    return out
# ==== tests ====
# lines: 4
assert running_max([3, 1, 4, 1, 5]) == [3, 3, 4, 4, 5]
assert running_max([]) == []
