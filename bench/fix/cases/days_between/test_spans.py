from spans import days_between


def test_month():
    assert days_between("2024-01-01", "2024-02-01") == 31

def test_leap():
    assert days_between("2024-02-28", "2024-03-01") == 2
