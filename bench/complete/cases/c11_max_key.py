def richest(balances: dict[str, int]) -> str:
    """The name with the largest balance."""
    return max(balances, key=<CURSOR>)
# ==== tests ====
assert richest({"a": 3, "b": 10, "c": 7}) == "b"
