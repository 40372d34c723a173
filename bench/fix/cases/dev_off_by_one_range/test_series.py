from series import sum_first


def test_small():
    assert sum_first(3) == 6

def test_one():
    assert sum_first(1) == 1

def test_zero():
    assert sum_first(0) == 0
