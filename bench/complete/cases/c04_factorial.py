def factorial(n: int) -> int:
    """n! for n >= 0."""
    if n <= 1:
        return 1
    return <CURSOR>
# ==== tests ====
assert factorial(0) == 1
assert factorial(5) == 120
