def clamp(x: float, lo: float, hi: float) -> float:
    """x limited to the range [lo, hi]."""
    return max(lo, <CURSOR>)
# ==== tests ====
assert clamp(5, 0, 3) == 3
assert clamp(-1, 0, 3) == 0
assert clamp(2, 0, 3) == 2
