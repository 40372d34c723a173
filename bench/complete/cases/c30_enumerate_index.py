def index_of_first_negative(xs: list[int]) -> int:
    """The index of the first negative number, or -1."""
    for i, x in enumerate(xs):
        if x < 0:
            return <CURSOR>
    return -1
# ==== tests ====
assert index_of_first_negative([3, 0, -2, -5]) == 2
assert index_of_first_negative([1, 2]) == -1
