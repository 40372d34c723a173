"""``codeloop models``: list the bundled models and the default; ``--prepare`` assembles one."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from codeloop.cli.adapters_cmd import adapter_rows, merged_label
from codeloop.llm.assemble import ModelStatus, model_file, prepare, status
from codeloop.llm.catalog import BUNDLED, find_bundled
from codeloop.llm.registry import default_model_name, resolve_name
from codeloop.llm.settings import configured_aliases

DESCRIPTION = (
    "List the bundled models, their aliases, which is the default and whether each is ready. "
    "--prepare assembles and verifies the default model (or --model NAME) in the user directory."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prepare",
        action="store_true",
        help="assemble and verify the default model (or --model) for offline use",
    )
    parser.add_argument(
        "--reverify", action="store_true", help="with --prepare: re-hash an already assembled model file"
    )


def run(args: argparse.Namespace) -> int:
    if args.prepare:
        return _prepare(args)
    if args.reverify:
        print("codeloop: --reverify goes with --prepare", file=sys.stderr)
        return 2
    listing = _listing()
    if args.json:
        print(json.dumps(listing, indent=2))
    else:
        _print_table(listing)
    return 0


def _listing() -> dict[str, Any]:
    default = default_model_name()
    default_resolved = resolve_name(default)
    models = []
    for m in BUNDLED:
        st = status(m)
        path = model_file(m) if st is ModelStatus.READY else None
        models.append(
            {
                "name": m.name,
                "aliases": list(m.aliases),
                "default": m.name == default_resolved,
                "status": st.value,
                "description": m.description,
                "license": m.license,
                "path": str(path) if path else None,
                "size": path.stat().st_size if path else m.size,
                "install": m.install_hint if st is ModelStatus.NOT_INSTALLED else None,
            }
        )
    return {
        "default": default,
        "default_resolved": default_resolved,
        "models": models,
        "aliases": configured_aliases(),
        "adapters": adapter_rows(),
    }


def _print_table(listing: dict[str, Any]) -> None:
    rows = [("NAME", "DEFAULT", "STATUS", "ALIASES", "DESCRIPTION")]
    for m in listing["models"]:
        rows.append(
            (m["name"], "*" if m["default"] else "", m["status"], ", ".join(m["aliases"]), m["description"])
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
    for m in listing["models"]:
        if m["status"] == ModelStatus.NOT_ASSEMBLED.value:
            print(f"\n{m['name']}: run `codeloop models --prepare --model {m['name']}` (or just use it)")
        elif m["install"]:
            print(f"\n{m['name']}: not installed; install with: {m['install']}")
    if listing["default"] != listing["default_resolved"] or not any(m["default"] for m in listing["models"]):
        print(f"\ndefault: {listing['default']} -> {listing['default_resolved']}")
    if listing["aliases"]:
        print("\naliases (config.toml):")
        for alias, target in sorted(listing["aliases"].items()):
            print(f"  {alias} -> {target}")
    if listing["adapters"]:
        print("\nadapters (codeloop selftrain; merge with `codeloop adapters merge NAME`):")
        for a in listing["adapters"]:
            print(f"  {a['model']}  {merged_label(a)}")
        print("  (BASE+NAME runs the merged model when there is one; BASE+NAME:lora the runtime adapter)")
    print(
        "\nalso: gguf:/path/model.gguf, openai:MODEL, ollama:MODEL, or --base-url URL for any OpenAI-compatible server"
    )


def _prepare(args: argparse.Namespace) -> int:
    name = resolve_name(args.model or default_model_name())
    model = find_bundled(name)
    if model is None:
        print(f"codeloop: {name} is not a bundled model: nothing to prepare", file=sys.stderr)
        return 0
    st = status(model)
    if st is ModelStatus.READY and not args.reverify:
        path = prepare(model)
        print(f"{model.name}: ready at {path}")
        return 0
    if st is ModelStatus.NOT_ASSEMBLED:
        print(f"{model.name}: assembling and verifying {model.filename}", file=sys.stderr)
    path = prepare(model, _Progress(model.name), reverify=args.reverify)
    print(f"{model.name}: ready at {path}")
    return 0


class _Progress:
    """Progress on stderr: a live percentage on a terminal, a few plain lines otherwise."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.tty = sys.stderr.isatty()
        self.last_pct = -1
        self.start = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        pct = int(100 * done / total) if total else 100
        step = 1 if self.tty else 25
        if pct // step == self.last_pct // step and done != total:
            return
        self.last_pct = pct
        rate = done / max(time.monotonic() - self.start, 1e-6) / 1e6
        line = f"{self.label}: {pct:3d}% of {total / 1e6:.0f} MB ({rate:.0f} MB/s)"
        if self.tty:
            end = "\n" if done == total else ""
            print(f"\r{line}", end=end, file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)
