from people import by_age


def test_by_age():
    people = [("ann", 40), ("bob", 25), ("cid", 31)]
    assert by_age(people) == [("bob", 25), ("cid", 31), ("ann", 40)]
