from extremes import largest


def test_mixed():
    assert largest([3, 9, 2, 7]) == 9

def test_single():
    assert largest([5]) == 5

def test_negative():
    assert largest([-4, -1, -8]) == -1
