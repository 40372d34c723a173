from datetime import datetime


def parse_day(text):
    """Parse an ISO date like '2024-03-05' (year-month-day) into a date."""
    return datetime.strptime(text, "%Y-%d-%m").date()
