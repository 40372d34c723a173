def gcd(a: int, b: int) -> int:
    """The greatest common divisor (Euclid)."""
    while b:
        a, b = b, <CURSOR>
    return a
# ==== tests ====
assert gcd(12, 18) == 6
assert gcd(7, 5) == 1
