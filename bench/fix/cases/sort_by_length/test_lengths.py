from lengths import shortest_first


def test_order():
    assert shortest_first(["ccc", "a", "bb"]) == ["a", "bb", "ccc"]

def test_ties():
    assert shortest_first(["xy", "z", "ab"]) == ["z", "xy", "ab"]
