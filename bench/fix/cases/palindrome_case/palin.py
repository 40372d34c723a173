def is_palindrome(s):
    """True when s reads the same backwards, ignoring case and spaces."""
    cleaned = s.replace(" ", "")
    return cleaned == cleaned[::-1]
