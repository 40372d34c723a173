def unique_sorted(items: list[int]) -> list[int]:
    """The distinct items in ascending order."""
    return sorted(<CURSOR>)
# ==== tests ====
assert unique_sorted([3, 1, 3, 2, 1]) == [1, 2, 3]
