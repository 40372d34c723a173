"""Reading errors for hints: missing module names, forgotten imports."""

from __future__ import annotations

import pytest

from codeloop.agent.hints import missing_module_name, module_names_probe, parse_names
from codeloop.engine.imports import import_probe, parse_statement, undefined_name, used_as_module_or_callable
from codeloop.sandbox import Sandbox


def test_missing_module_name() -> None:
    assert missing_module_name("ImportError", "cannot import name 'x' from 'statistics' (/p.py)") == (
        "statistics",
        "x",
    )
    assert missing_module_name("AttributeError", "module 'os.path' has no attribute 'y'") == ("os.path", "y")
    assert missing_module_name("AttributeError", "'int' object has no attribute 'y'") is None
    assert missing_module_name("NameError", "name 'x' is not defined") is None


def test_probes_are_only_built_for_plain_names() -> None:
    assert module_names_probe("os.path") is not None
    assert module_names_probe("os; import shutil") is None
    assert parse_names("['a', 'b', 3]") == ["a", "b"]
    assert parse_names("not a list") == []
    assert parse_names(None) == []


def test_undefined_name_and_its_use() -> None:
    assert undefined_name("NameError", "name 'date' is not defined") == "date"
    assert undefined_name("TypeError", "name 'date' is not defined") is None
    assert used_as_module_or_callable("date", "d = date(2024, 1, 1)")
    assert used_as_module_or_callable("np", "x = np.array([1])")
    assert not used_as_module_or_callable("count", "count += 1")
    assert not used_as_module_or_callable("date", "x.date()")


@pytest.mark.parametrize(
    ("name", "stmt"),
    [
        ("date", "from datetime import date"),
        ("Counter", "from collections import Counter"),
        ("sqrt", "from math import sqrt"),
        ("pd", "import pandas as pd"),
        ("no_such_thing", None),
    ],
)
def test_import_probe_runs_in_the_sandbox(name: str, stmt: str | None) -> None:
    with Sandbox() as sb:
        assert parse_statement(sb.run(import_probe(name)).value) == stmt


def test_parse_statement_accepts_only_imports() -> None:
    assert parse_statement("'import os'") == "import os"
    assert parse_statement("'os.system(1)'") is None
    assert parse_statement("None") is None
