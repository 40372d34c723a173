def reverse_words(sentence: str) -> str:
    """The words of sentence in reverse order, separated by single spaces."""
    words = sentence.split()
    return <CURSOR>
# ==== tests ====
assert reverse_words("a b c") == "c b a"
assert reverse_words("  hello   world ") == "world hello"
