from collections import Counter


def word_count(text: str) -> dict[str, int]:
    """How often each lower-cased word occurs in text."""
    return dict(Counter(<CURSOR>))
# ==== tests ====
assert word_count("a B a") == {"a": 2, "b": 1}
