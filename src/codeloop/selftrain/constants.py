"""Self-training names the command line needs while it parses: light, it imports nothing.

The merge types live here rather than in :mod:`codeloop.selftrain.merge` so that ``codeloop
adapters`` and ``codeloop selftrain`` can offer them as ``choices`` without loading numpy (which
``merge`` imports) on every parse.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MERGE_TYPE", "MERGE_TYPES"]

#: merged tensors' type: Q8_0 or F16 (written directly), or each one's type in the base (llama.cpp quantises)
MERGE_TYPES = ("q8_0", "f16", "base")
#: closest to the runtime adapter (docs/selftrain.md, "Measured: cost and fidelity")
DEFAULT_MERGE_TYPE = "q8_0"
