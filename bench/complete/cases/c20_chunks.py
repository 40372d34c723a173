def chunks(items: list, size: int) -> list[list]:
    """items split into consecutive lists of at most size items."""
    return [items[i:i + size] for i in <CURSOR>]
# ==== tests ====
assert chunks([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
assert chunks([], 3) == []
