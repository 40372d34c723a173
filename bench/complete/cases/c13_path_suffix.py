from pathlib import Path


def python_files(names: list[str]) -> list[str]:
    """The names that end in .py."""
    return [n for n in names if Path(n).suffix == <CURSOR>]
# ==== tests ====
assert python_files(["a.py", "b.txt", "c.py"]) == ["a.py", "c.py"]
