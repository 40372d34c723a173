from euclid import gcd


def test_gcd():
    assert gcd(12, 18) == 6

def test_coprime():
    assert gcd(7, 5) == 1
