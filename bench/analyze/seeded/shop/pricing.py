"""Pricing rules: one function far too complex, seeded on purpose."""


def price(kind: str, qty: int, member: bool, coupon: str | None, region: str) -> float:  # seeded: C901, CC-C
    base = 0.0
    if kind == "book":
        base = 12.0
    elif kind == "pen":
        base = 1.5
    elif kind == "bag":
        base = 30.0
    elif kind == "lamp":
        base = 45.0
    else:
        base = 10.0
    if qty > 100:
        base *= 0.7
    elif qty > 10:
        base *= 0.9
    if member and qty > 1:
        base *= 0.95
    if coupon == "HALF":
        base *= 0.5
    elif coupon == "TENOFF" and base > 10:
        base -= 10
    if region == "EU":
        base *= 1.2
    elif region == "US" and kind != "book":
        base *= 1.08
    return round(base * qty, 2)


def simple(qty: int) -> int:
    return qty * 2
