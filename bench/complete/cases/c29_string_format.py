def greeting(name: str, count: int) -> str:
    """'Hello NAME, you have COUNT new messages'."""
    return f"Hello {name}, you have <CURSOR> new messages"
# ==== tests ====
assert greeting("Ann", 3) == "Hello Ann, you have 3 new messages"
