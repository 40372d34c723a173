"""``codeloop history list|show ID|export ID --ipynb PATH``: stored runs and chats."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from codeloop.store import History, StoredConversation, export_notebook
from codeloop.text import parse_reply, trim_middle

DESCRIPTION = (
    "Every 'codeloop run' and 'codeloop chat' turn is stored in SQLite under the user directory. "
    "'list' shows the latest, 'show ID' prints one, 'export ID --ipynb PATH' writes it as a Jupyter "
    "notebook that re-executes cleanly. Resume a chat with 'codeloop chat --resume ID'."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["list", "show", "export"], help="what to do")
    parser.add_argument("id", nargs="?", type=int, help="the run or chat id (from 'history list')")
    parser.add_argument("--ipynb", type=Path, default=None, help="with export: the notebook file to write")
    parser.add_argument("--limit", type=int, default=20, help="with list: how many to show (default 20)")


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _list(history: History, args: argparse.Namespace) -> int:
    rows = history.list(max(1, args.limit))
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], ensure_ascii=False))
        return 0
    if not rows:
        print('no runs or chats yet: try codeloop run "What is 2**100?"')
        return 0
    for r in rows:
        status = r.last_status or "-"
        print(f"{r.id:>5}  {_when(r.updated_at)}  {r.kind:<4}  {r.turns:>2} turn(s)  {status:<11}  {r.title}")
    return 0


def print_conversation(conv: StoredConversation) -> None:
    """A readable transcript of a stored run or chat."""
    print(f"{conv.kind} {conv.id}: {conv.title}  ({_when(conv.created_at)}, model {conv.model or '?'})")
    for n, turn in enumerate(conv.turns, 1):
        print(f"\n=== turn {n}: {turn.task}")
        for step in turn.steps:
            parsed = parse_reply(step.model_text)
            if parsed.prose and (step.code is not None or step is not turn.steps[-1] or not turn.ok):
                print(parsed.prose)
            if step.code is not None:
                print("```python\n" + step.code + "\n```")
            outcome = step.outcome
            if outcome is not None:
                if outcome.stdout:
                    print(trim_middle(outcome.stdout.rstrip(), 4000))
                if outcome.value is not None:
                    print("→ " + trim_middle(outcome.value, 2000))
                if outcome.error:
                    print(f"{outcome.error.ename}: {outcome.error.evalue}")
                print(f"-- {outcome.status} in {outcome.duration:.2f} s")
            elif step.observation:
                label = "not run" if step.code is not None else "the loop asked"
                print(f"-- {label}: {step.observation.splitlines()[0]}")
            for fig in step.figures:
                print(f"figure: {fig.path}")
        if turn.ok:
            print(f"Answer: {turn.answer}")
        else:
            print(f"No answer: {turn.error or turn.status.value}")


def run(args: argparse.Namespace) -> int:
    if args.action in ("show", "export") and args.id is None:
        print(
            f"codeloop history {args.action}: give the id of a run or chat (see 'codeloop history list')",
            file=sys.stderr,
        )
        return 2
    if args.action == "export" and args.ipynb is None:
        print("codeloop history export: give --ipynb PATH for the notebook to write", file=sys.stderr)
        return 2
    with History() as history:
        if args.action == "list":
            return _list(history, args)
        conv = history.load(args.id)
    if args.action == "show":
        if args.json:
            data = {k: v for k, v in conv.__dict__.items() if k != "turns"}
            data["turns"] = [t.to_dict() for t in conv.turns]
            print(json.dumps(data, ensure_ascii=False))
        else:
            print_conversation(conv)
        return 0
    path = export_notebook(conv.turns, args.ipynb, title=conv.title)
    if args.json:
        print(json.dumps({"id": conv.id, "path": str(path)}))
    else:
        print(f"wrote {path}")
    return 0
