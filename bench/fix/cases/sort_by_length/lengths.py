def shortest_first(words):
    """words sorted by length, shortest first (ties keep their order)."""
    return sorted(words, key=len, reverse=True)
