def count_vowels(text: str) -> int:
    """How many characters of text are vowels (a, e, i, o, u), any case."""
    return sum(1 for ch in text.lower() if <CURSOR>)
# ==== tests ====
assert count_vowels("Hello World") == 3
assert count_vowels("xyz") == 0
