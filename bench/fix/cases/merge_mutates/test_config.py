from config import merged


def test_values():
    assert merged({"a": 1, "b": 2}, {"b": 3}) == {"a": 1, "b": 3}

def test_base_unchanged():
    base = {"a": 1}
    merged(base, {"a": 2, "c": 3})
    assert base == {"a": 1}
