def mean(values):
    """The arithmetic mean; 0.0 for an empty list."""
    return sum(values) / len(values)
