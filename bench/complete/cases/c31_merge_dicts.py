def merged(defaults: dict, overrides: dict) -> dict:
    """A new dict: defaults updated with overrides (neither argument changes)."""
    return {**defaults, <CURSOR>}
# ==== tests ====
d = {"a": 1, "b": 2}
assert merged(d, {"b": 3}) == {"a": 1, "b": 3}
assert d == {"a": 1, "b": 2}
