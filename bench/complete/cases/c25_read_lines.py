def non_empty_lines(text: str) -> list[str]:
    """The lines of text that are not blank, stripped."""
    return [line.strip() for line in text.splitlines() if <CURSOR>]
# ==== tests ====
assert non_empty_lines("a\n\n  b  \n   \n") == ["a", "b"]
