"""The structure of Python files from their syntax trees: modules, classes, functions, imports, calls.

Nothing is imported or run: it is all read from ``ast``. Call targets are resolved the way a reader
would: a name defined in the module, an imported name (``from a import b`` makes ``b()`` a call
of ``a.b``), ``self.m()`` inside a class as that class's method; anything else stays as written.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeloop.workflows.analyze_findings import SourceFile

__all__ = ["call_graph", "module_name", "structure_of"]


def module_name(path: str, roots: Sequence[Path] = ()) -> str:
    """A dotted module name for ``path``: relative to the root it was found under, packages kept."""
    p = Path(path)
    parts = list(p.with_suffix("").parts)
    for root in roots:
        try:
            rel = p.resolve().relative_to(root.resolve())
        except ValueError:
            continue
        base = [root.resolve().name] if (root / "__init__.py").is_file() else []
        parts = base + list(rel.with_suffix("").parts)
        break
    else:
        parts = parts[-1:]
    if parts and parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(x for x in parts if x not in ("", ".", "..")) or p.stem


@dataclass
class _Scope:
    module: str
    imports: dict[str, str] = field(default_factory=dict)  # local name -> dotted target
    defined: set[str] = field(default_factory=set)  # top-level functions and classes


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    args = ast.unparse(node.args)
    returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    return f"{prefix} {node.name}({args}){returns}"


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _resolve(name: str, scope: _Scope, cls: str | None) -> str:
    head, _, rest = name.partition(".")
    if head == "self" and cls and rest and "." not in rest:
        return f"{scope.module}.{cls}.{rest}"
    if head in scope.imports:
        return scope.imports[head] + (f".{rest}" if rest else "")
    if head in scope.defined:
        return f"{scope.module}.{name}"
    return name


class _Visitor(ast.NodeVisitor):
    def __init__(self, scope: _Scope) -> None:
        self.scope = scope
        self.stack: list[str] = []
        self.classes: list[str] = []
        self.functions: list[dict[str, Any]] = []
        self.class_list: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []

    def _qual(self, name: str) -> str:
        return ".".join([*self.stack, name])

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        qual = self._qual(node.name)
        self.class_list.append(
            {
                "name": qual,
                "line": node.lineno,
                "end_line": node.end_lineno,
                "bases": [ast.unparse(b) for b in node.bases],
                "decorators": [ast.unparse(d) for d in node.decorator_list],
                "methods": [
                    n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                ],
                "docstring": _first_line(ast.get_docstring(node)),
            }
        )
        self.stack.append(node.name)
        self.classes.append(qual)
        self.generic_visit(node)
        self.classes.pop()
        self.stack.pop()

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        qual = self._qual(node.name)
        in_class = bool(self.classes) and self.stack and self.stack[-1] == self.classes[-1].split(".")[-1]
        self.functions.append(
            {
                "name": qual,
                "kind": "method" if in_class else "function",
                "signature": _signature(node),
                "line": node.lineno,
                "end_line": node.end_lineno,
                "decorators": [ast.unparse(d) for d in node.decorator_list],
                "docstring": _first_line(ast.get_docstring(node)),
            }
        )
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        if name is not None:
            cls = self.classes[-1] if self.classes else None
            caller = f"{self.scope.module}.{'.'.join(self.stack)}" if self.stack else self.scope.module
            self.calls.append(
                {"caller": caller, "callee": _resolve(name, self.scope, cls), "line": node.lineno}
            )
        self.generic_visit(node)


def _first_line(doc: str | None) -> str | None:
    return doc.strip().splitlines()[0] if doc and doc.strip() else None


def _imports(tree: ast.Module, module: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    listed: list[dict[str, Any]] = []
    local: dict[str, str] = {}
    package = module.rsplit(".", 1)[0] if "." in module else ""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                listed.append({"module": alias.name, "name": None, "as": alias.asname, "line": node.lineno})
                if alias.asname:
                    local[alias.asname] = alias.name
                else:
                    local[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".") if package else []
                up = up[: len(up) - (node.level - 1)] if node.level > 1 else up
                base = ".".join([*up, base] if base else up)
            for alias in node.names:
                listed.append(
                    {
                        "module": base,
                        "name": alias.name,
                        "as": alias.asname,
                        "line": node.lineno,
                        "level": node.level,
                    }
                )
                if alias.name != "*":
                    local[alias.asname or alias.name] = f"{base}.{alias.name}" if base else alias.name
    return listed, local


def structure_of(source: SourceFile, module: str) -> dict[str, Any]:
    """The structure of one file: ``{"path", "module", "lines", "docstring", "imports", "classes",
    "functions", "calls"}``; a file that does not parse gets ``"error"`` and empty lists."""
    base: dict[str, Any] = {"path": source.path, "module": module, "lines": len(source.lines)}
    try:
        tree = ast.parse(source.text, filename=source.path)
    except (SyntaxError, ValueError) as e:
        return {
            **base,
            "error": str(e),
            "docstring": None,
            "imports": [],
            "classes": [],
            "functions": [],
            "calls": [],
        }
    imports, local = _imports(tree, module)
    defined = {
        n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    visitor = _Visitor(_Scope(module, local, defined))
    visitor.visit(tree)
    return {
        **base,
        "docstring": _first_line(ast.get_docstring(tree)),
        "imports": imports,
        "classes": visitor.class_list,
        "functions": visitor.functions,
        "calls": visitor.calls,
    }


def call_graph(modules: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The calls across all modules as edges, each marked ``internal`` when the callee is a
    function or class defined in the analysed files."""
    known: set[str] = set()
    for m in modules:
        known.update(f"{m['module']}.{f['name']}" for f in m["functions"])
        known.update(f"{m['module']}.{c['name']}" for c in m["classes"])
    edges: dict[tuple[str, str], dict[str, Any]] = {}
    for m in modules:
        for call in m["calls"]:
            key = (call["caller"], call["callee"])
            if key in edges:
                edges[key]["lines"].append(call["line"])
            else:
                edges[key] = {
                    "caller": call["caller"],
                    "callee": call["callee"],
                    "internal": call["callee"] in known,
                    "path": m["path"],
                    "lines": [call["line"]],
                }
    return {"nodes": sorted(known), "edges": list(edges.values())}
