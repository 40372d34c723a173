from temperature import to_fahrenheit


def test_boiling():
    assert to_fahrenheit(100) == 212

def test_freezing():
    assert to_fahrenheit(0) == 32

def test_body():
    assert abs(to_fahrenheit(37) - 98.6) < 1e-9
