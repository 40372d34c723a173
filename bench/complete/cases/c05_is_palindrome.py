def is_palindrome(text: str) -> bool:
    """Whether text reads the same backwards, ignoring case and spaces."""
    cleaned = text.replace(" ", "").lower()
    return cleaned == <CURSOR>
# ==== tests ====
assert is_palindrome("Never odd or even")
assert not is_palindrome("codeloop")
