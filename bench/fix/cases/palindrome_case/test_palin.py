from palin import is_palindrome


def test_simple():
    assert is_palindrome("level")

def test_mixed_case():
    assert is_palindrome("Never odd or even")

def test_not():
    assert not is_palindrome("python")
