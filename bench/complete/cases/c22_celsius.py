def to_fahrenheit(celsius: float) -> float:
    """Degrees Celsius in Fahrenheit."""
    return celsius * <CURSOR>
# ==== tests ====
assert to_fahrenheit(100) == 212
assert to_fahrenheit(0) == 32
