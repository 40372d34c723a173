def flatten(rows: list[list[int]]) -> list[int]:
    """All items of all rows, in order."""
    return [item for row in rows <CURSOR>]
# ==== tests ====
assert flatten([[1, 2], [3], []]) == [1, 2, 3]
