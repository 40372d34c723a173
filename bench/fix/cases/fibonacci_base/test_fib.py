from fib import fib


def test_start():
    assert [fib(i) for i in range(6)] == [0, 1, 1, 2, 3, 5]

def test_ten():
    assert fib(10) == 55
