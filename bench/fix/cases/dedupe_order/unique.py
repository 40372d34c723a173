def dedupe(items):
    """items without repeats, keeping the first occurrence of each, in order."""
    return list(set(items))
