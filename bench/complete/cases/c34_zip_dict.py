def pair_up(keys: list[str], values: list[int]) -> dict[str, int]:
    """A dict mapping each key to the value at the same position."""
    return dict(<CURSOR>)
# ==== tests ====
assert pair_up(["a", "b"], [1, 2]) == {"a": 1, "b": 2}
