"""Run llama-cpp-python's OpenAI-compatible server with codeloop's llama.cpp workarounds.

``python -m codeloop.llm.llama_server --model FILE.gguf --port 8080`` takes the arguments of
``python -m llama_cpp.server``. On AMX CPUs it keeps weights out of llama.cpp's AMX buffers,
whose matmul segfaults in this llama.cpp (ggml-org/llama.cpp#20824), and its OpenMP threads
sleep instead of spinning between steps; otherwise it is the plain server. Needs the
``server`` extra (fastapi, uvicorn, sse-starlette, ...).
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Start the server in this process (blocks until it stops)."""
    from codeloop.llm.llama_load import cpu_has_amx, model_params_override, quiet_openmp

    quiet_openmp()
    try:
        import fastapi  # noqa: F401  (the server's own imports fail less clearly)
        import llama_cpp.llama_cpp as lib
        import uvicorn  # noqa: F401
    except ImportError as e:
        sys.exit(
            f"codeloop: the llama.cpp server needs the server extra: pip install 'codeloop[server]' ({e})"
        )
    sys.argv = ["python -m llama_cpp.server", *(sys.argv[1:] if argv is None else argv)]
    with model_params_override(lib, use_extra_bufts=not cpu_has_amx()):
        runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
