def is_prime(n: int) -> bool:
    """Whether n is a prime number."""
    if n < 2:
        return False
    <CURSOR>
# ==== tests ====
# lines: 3
assert [n for n in range(20) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19]
