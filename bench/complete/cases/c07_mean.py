def mean(values: list[float]) -> float:
    """The arithmetic mean; 0.0 for an empty list."""
    if not values:
        return 0.0
    return <CURSOR>
# ==== tests ====
assert mean([1, 2, 3, 4]) == 2.5
assert mean([]) == 0.0
