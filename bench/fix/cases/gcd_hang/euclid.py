def gcd(a, b):
    """Greatest common divisor of two positive integers."""
    while b != 0:
        a = a % b
    return a
