def sum_evens(xs):
    """The sum of the even numbers in xs."""
    return sum(x for x in xs if <CURSOR>)
# ==== tests ====
assert sum_evens([1, 2, 3, 4]) == 6
assert sum_evens([]) == 0
assert sum_evens([5, 7]) == 0
