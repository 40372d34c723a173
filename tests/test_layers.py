"""Imports point one way (docs/architecture.md): a package imports only lower layers and itself."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "codeloop"
# The layer map of docs/architecture.md; packages not written yet are placed already.
LAYERS = [
    {"errors"},
    {"config", "text"},
    {"sandbox", "llm"},
    {"engine", "lm"},
    {"agent"},
    {"workflows"},
    {"evals"},
    {"store", "scale", "selftrain"},
    {"server"},
    {"cli"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
# Upward imports allowed on purpose, each a lazy lookup by name: the model registry loads the
# small-LM backend only for an ``lm:`` model.
ALLOWED = {("llm", "lm")}


def imports(path: Path) -> set[str]:
    """The codeloop modules a file imports, anywhere in it (lazy imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("codeloop."))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("codeloop."):
            found.add(node.module or "")
    return found


def wrong_imports(src: Path) -> list[str]:
    """Every import in the package at ``src`` that points up or sideways on the map."""
    wrong = []
    for path in sorted(src.rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        if len(parts) == 1 and parts[0] in ("__init__", "__main__"):
            continue  # the package's face: it may name anything
        own = parts[0]
        assert own in RANK, f"{own} is not on the layer map: place it in docs/architecture.md and LAYERS"
        for target in imports(path):
            other = target.split(".")[1]
            if other != own and RANK.get(other, len(LAYERS)) >= RANK[own] and (own, other) not in ALLOWED:
                wrong.append(f"{path.relative_to(src)} imports {target}")
    return wrong


def test_every_import_points_down_the_layers() -> None:
    wrong = wrong_imports(SRC)
    assert not wrong, "imports pointing up or sideways:\n" + "\n".join(wrong)


def test_the_check_sees_a_wrong_way_import(tmp_path: Path) -> None:
    (tmp_path / "sandbox").mkdir()
    (tmp_path / "sandbox" / "session.py").write_text("def f():\n    from codeloop.agent import Agent\n")
    (tmp_path / "llm.py").write_text("import codeloop.sandbox.session\n")
    (tmp_path / "cli.py").write_text("from codeloop.sandbox import Sandbox\n")
    assert wrong_imports(tmp_path) == ["llm.py imports codeloop.sandbox.session", "sandbox/session.py imports codeloop.agent"]


def _module_level_imports(path: Path, modules: set[str]) -> set[str]:
    """What a module imports when it loads (its top level, ``if TYPE_CHECKING:`` blocks included)."""
    found: set[str] = set()
    body = list(ast.parse(path.read_text(encoding="utf-8")).body)
    while body:
        node = body.pop()
        if isinstance(node, ast.If):
            body.extend(node.body)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module in modules:
            # ``from pkg import sub`` imports the submodule when there is one
            found.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names)
    return found


def test_no_import_circle() -> None:
    paths = {".".join(("codeloop", *p.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__"): p for p in SRC.rglob("*.py")}
    graph = {name: _module_level_imports(path, set(paths)) for name, path in paths.items()}
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            raise AssertionError("import circle: " + " -> ".join([*trail[trail.index(name) :], name]))
        if name not in done:
            for target in sorted(graph[name]):
                visit(target, [*trail, name])
            done.add(name)

    for name in sorted(graph):
        visit(name, [])
