"""Every public name resolves from a bare ``import codeloop`` (in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

import codeloop

# The modules behind ``codeloop._EXPORTS`` that exist in the tree today. Every name they export
# must resolve; an engineer who adds a package adds its module here with its names in _EXPORTS.
CHECKED_MODULES = {"codeloop.errors", "codeloop.sandbox", "codeloop.llm", "codeloop.agent"}

PROBE = """
import json, sys
import codeloop
heavy = sorted(m for m in ("codeloop.sandbox", "codeloop.llm", "codeloop.agent", "numpy") if m in sys.modules)
failures = {}
for name in json.loads(sys.argv[1]):
    try:
        getattr(codeloop, name)
    except Exception as e:
        failures[name] = f"{type(e).__name__}: {e}"
print(json.dumps({"heavy_after_import": heavy, "failures": failures}))
"""


def test_all_names_are_declared_in_exports() -> None:
    assert set(codeloop.__all__) == {*codeloop._EXPORTS, "__version__"}


def test_every_public_name_resolves_in_a_fresh_interpreter() -> None:
    names = sorted(name for name, module in codeloop._EXPORTS.items() if module in CHECKED_MODULES)
    assert set(codeloop._EXPORTS.values()) <= CHECKED_MODULES, "a module was added: list it in CHECKED_MODULES"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([*names, "__version__"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["failures"] == {}
    assert report["heavy_after_import"] == [], "import codeloop must stay cheap (names load lazily)"


def test_unknown_names_raise_attribute_error() -> None:
    try:
        codeloop.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as e:
        assert "NoSuchThing" in str(e)
    else:
        raise AssertionError("codeloop.NoSuchThing should not exist")
