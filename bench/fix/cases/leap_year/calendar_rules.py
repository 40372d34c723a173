def is_leap(year):
    """Gregorian leap year: divisible by 4, except centuries, except every 400 years."""
    return year % 4 == 0 and year % 100 != 0
