def private_names(names: list[str]) -> list[str]:
    """The names that start with an underscore."""
    return [n for n in names if n.<CURSOR>]
# ==== tests ====
assert private_names(["_a", "b", "_c"]) == ["_a", "_c"]
