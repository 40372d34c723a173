"""The shopping cart: bugs a linter catches, seeded on purpose."""

import json  # seeded: F401
import os


def add_item(item: str, cart: list = []) -> list:  # seeded: B006
    cart.append(item)
    return cart


def total(prices: dict) -> float:
    result = 0.0
    unused = len(prices)  # seeded: F841
    for name in prices:
        result += prices[name]
    return result + discount  # seeded: F821


def is_empty(cart: list | None) -> bool:
    if cart == None:  # seeded: E711
        return True
    return len(cart) == 0


def describe(cart: list) -> str:
    return f"a cart"  # seeded: F541


def load(path: str) -> dict:
    try:
        with open(os.path.join(path, "cart.json")) as f:
            return {"raw": f.read()}
    except:  # seeded: E722
        return {}


def callbacks(names: list) -> list:
    out = []
    for name in names:
        out.append(lambda: name.upper())  # seeded: B023
    return out


def quiet(fn: object) -> None:
    try:
        fn()  # type: ignore[operator]
    except Exception:  # seeded: S110
        pass
