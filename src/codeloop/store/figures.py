"""Figures cells produce, saved as PNG files next to the history: ``figures/<run id>/``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from codeloop.agent.result import Figure
from codeloop.errors import HistoryError

__all__ = ["save_figures"]


def save_figures(directory: Path, prefix: str, figures: Sequence[Figure]) -> list[Path]:
    """Write each figure that has bytes but no path yet as ``<directory>/<prefix>-<n>.png``; set its path."""
    saved: list[Path] = []
    for n, fig in enumerate(figures, 1):
        if fig.png is None or fig.path is not None:
            continue
        path = directory / f"{prefix}-{n}.png"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".png.tmp")
            tmp.write_bytes(fig.png)
            tmp.replace(path)
        except OSError as e:
            raise HistoryError(f"cannot save a figure to {path}: {e}") from e
        fig.path = str(path)
        saved.append(path)
    return saved
