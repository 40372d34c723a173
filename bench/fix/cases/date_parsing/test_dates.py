from datetime import date

from dates import parse_day


def test_march():
    assert parse_day("2024-03-05") == date(2024, 3, 5)

def test_december():
    assert parse_day("2023-12-25") == date(2023, 12, 25)
