PRICES = {"apple": 3, "pear": 4}


def price_of(fruit: str) -> int:
    """The price of fruit, 0 when it is not sold."""
    return PRICES.get(<CURSOR>)
# ==== tests ====
assert price_of("pear") == 4
assert price_of("kiwi") == 0
