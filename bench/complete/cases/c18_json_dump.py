import json


def to_json(data: dict) -> str:
    """data as JSON text with sorted keys."""
    return json.dumps(data, <CURSOR>)
# ==== tests ====
assert to_json({"b": 1, "a": 2}) == '{"a": 2, "b": 1}'
