import pytest
from numbers_ import to_int


def test_good():
    assert to_int(" 42 ") == 42

def test_bad():
    with pytest.raises(ValueError):
        to_int("forty-two")
