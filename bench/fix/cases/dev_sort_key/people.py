def by_age(people):
    """People (name, age) sorted by age, youngest first."""
    return sorted(people, key=lambda p: p[0])
