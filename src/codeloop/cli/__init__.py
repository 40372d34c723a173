"""The ``codeloop`` command line: a thin dispatcher over one module per subcommand.

Each subcommand module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Modules are imported lazily so ``codeloop exec`` never pays for the
model stack. Exit codes: 0 ok, 1 task failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from codeloop.errors import CodeloopError

__all__ = ["main"]

# subcommand name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("codeloop.cli.run_cmd", "the main job: the model writes and runs code, then answers"),
    "chat": ("codeloop.cli.chat_cmd", "interactive session with a stateful sandbox and history"),
    "exec": ("codeloop.cli.exec_cmd", "run code in the sandbox, no model"),
    "models": ("codeloop.cli.models_cmd", "list the available models and the default"),
    "history": ("codeloop.cli.history_cmd", "list, show and export stored runs and chats"),
    "cleanup": ("codeloop.cli.cleanup_cmd", "remove sandbox directories left by killed codeloop processes"),
    "eval": ("codeloop.cli.eval_cmd", "benchmark a model: HumanEval (+ infilling, EvalPlus) pass@k in the sandbox"),
    "analyze": ("codeloop.cli.analyze_cmd", "analyse Python code: structure, ruff and radon findings, a model review"),
    "complete": ("codeloop.cli.complete_cmd", "complete code at FILE:LINE:COL (fill-in-the-middle)"),
    "serve": ("codeloop.cli.serve_cmd", "HTTP API and web page on 127.0.0.1:8765 (sessions, tasks, history)"),
    "mcp": ("codeloop.cli.mcp_cmd", "Model Context Protocol server (stdio; --http): run_python, solve_task"),
    "fix": ("codeloop.cli.fix_cmd", "repair code until its tests pass (on a sandboxed copy; --write to apply)"),
    "debug": ("codeloop.cli.debug_cmd", "run a script under monitoring, explain the failure, propose a fix"),
    "selftrain": ("codeloop.cli.selftrain_cmd", "fine-tune the embedded model on programs its runs verified"),
    "adapters": ("codeloop.cli.adapters_cmd", "list the self-trained LoRA adapters; merge one into its base model"),
    "lm": ("codeloop.cli.lm_cmd", "train, evaluate and sample codeloop's own small code language model"),
}


def _add_global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model name or alias (default: the configured default)")
    parser.add_argument("--base-url", default=None, help="base URL of an OpenAI-compatible server")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--verbose", "-v", action="store_true", help="more detail on stderr")


def build_parser(argv: Sequence[str]) -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(prog="codeloop", description="An LLM code interpreter for Python.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    modules: dict[str, object] = {}
    for name, (module_name, help_text) in COMMANDS.items():
        # Import only the module the user asked for; the others show their help line only.
        if name == wanted:
            module = importlib.import_module(module_name)
            modules[name] = module
            sp = sub.add_parser(name, help=help_text, description=getattr(module, "DESCRIPTION", help_text))
            _add_global_options(sp)
            module.add_arguments(sp)
        else:
            sub.add_parser(name, help=help_text)
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser, modules = build_parser(args_list)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    module = modules[args.command]
    try:
        return int(module.run(args))  # type: ignore[attr-defined]
    except CodeloopError as e:
        print(f"codeloop: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("codeloop: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
