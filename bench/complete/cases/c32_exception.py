def parse_int(text: str, default: int = 0) -> int:
    """text as an int, or default when it is not a number."""
    try:
        return int(text)
    except <CURSOR>
        return default
# ==== tests ====
assert parse_int("42") == 42
assert parse_int("x4", 7) == 7
