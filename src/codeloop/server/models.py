"""Which models a shared server lets clients name, loaded once each and kept for the server's life."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from codeloop.errors import ConfigError

__all__ = ["ModelChooser"]


class ModelChooser:
    """Clients may name the server's default model, a bundled model, or one the operator allowed.

    Any other name (a ``gguf:`` path on the server's disk, an ``openai:`` model paid for by the
    server's key) is refused: the operator decides what a shared server runs.
    """

    def __init__(
        self, default: str | None = None, *, base_url: str | None = None, allowed: Sequence[str] = ()
    ) -> None:
        self.default = default
        self.base_url = base_url
        self.allowed = tuple(allowed)
        self._lock = threading.Lock()
        self._loaded: dict[str | None, Any] = {}

    def check(self, name: str | None) -> str | None:
        """The model name to load for a request (None: the default); ConfigError if not offered."""
        if name is None or not name.strip() or name == self.default:
            return self.default
        name = name.strip()
        if name in self.allowed:
            return name
        if self.base_url is None:
            from codeloop.llm.catalog import find_bundled

            if find_bundled(name) is not None:
                return name
        offered = ", ".join(self.offered())
        raise ConfigError(f"this server does not offer the model {name!r}; it offers: {offered}")

    def offered(self) -> list[str]:
        names = [self.default or "the default model", *self.allowed]
        if self.base_url is None:
            from codeloop.llm.catalog import BUNDLED

            names += [m.name for m in BUNDLED if m.name not in names]
        return names

    def load(self, name: str | None) -> Any:
        """The model (loaded on first use, then shared; the embedded runtime serialises calls)."""
        name = self.check(name)
        with self._lock:
            model = self._loaded.get(name)
            if model is None:
                from codeloop.llm import get_model

                model = get_model(name, base_url=self.base_url)
                self._loaded[name] = model
            return model
