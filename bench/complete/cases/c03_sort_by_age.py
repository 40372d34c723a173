people = [("ann", 31), ("bob", 25), ("cy", 40)]


def by_age(rows):
    """The rows sorted by age (the second field), youngest first."""
    return sorted(rows, key=<CURSOR>)
# ==== tests ====
assert by_age(people) == [("bob", 25), ("ann", 31), ("cy", 40)]
