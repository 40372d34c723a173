def countdown(n):
    """[n, n-1, ..., 1]."""
    out = []
    while n > 0:
        out.append(n)
    return out
