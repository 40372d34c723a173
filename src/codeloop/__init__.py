"""codeloop: an LLM code interpreter for Python.

The public API is listed in ``__all__`` and loaded lazily, so ``import codeloop`` stays cheap
and never pulls in the model stack until a model is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "CodeloopError": "codeloop.errors",
    "ConfigError": "codeloop.errors",
    "HistoryError": "codeloop.errors",
    "ModelError": "codeloop.errors",
    "SandboxError": "codeloop.errors",
    "SandboxUnavailable": "codeloop.errors",
    "Sandbox": "codeloop.sandbox",
    "RunResult": "codeloop.sandbox",
    "ErrorInfo": "codeloop.sandbox",
    "get_model": "codeloop.llm",
    "Model": "codeloop.llm",
    "Reply": "codeloop.llm",
    "Agent": "codeloop.agent",
    "AgentResult": "codeloop.agent",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'codeloop' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext codeloop``: the ``%%codeloop`` and ``%codeloop_exec`` magics (codeloop.server.magics)."""
    from codeloop.server.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext codeloop``: close the magics' sandbox."""
    from codeloop.server.magics import unload_ipython_extension as unload

    unload(ipython)
