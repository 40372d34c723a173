def last_n(items, n):
    """The last n items of a list (all of them when n >= len)."""
    return items[-n - 1:]
