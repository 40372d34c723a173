from datetime import date


def days_between(start, end):
    """Whole days from the ISO date start to the ISO date end ('2024-01-01' style)."""
    a = date.fromisoformat(start)
    b = date.fromisoformat(end)
    return (b - a).seconds
