"""A tiny real training run, shared by the lm tests: real tokeniser, real model, real steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="the lm tests need the train extra (scripts/setup.sh --dev installs it)")

from lm_helpers import TINY, codeloop, last_json


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A tiny Transformer trained for 300 steps through `codeloop lm train`."""
    out = tmp_path_factory.mktemp("lm") / "tiny"
    done = codeloop(
        "lm", "train", "--out", str(out), *TINY, "--steps", "300", "--eval-every", "100", "--json"
    )
    return out, last_json(done)
