def fib(n: int) -> int:
    """The n-th Fibonacci number (fib(0) == 0, fib(1) == 1)."""
    a, b = 0, 1
    for _ in range(n):
        a, b = <CURSOR>
    return a
# ==== tests ====
assert [fib(i) for i in range(8)] == [0, 1, 1, 2, 3, 5, 8, 13]
