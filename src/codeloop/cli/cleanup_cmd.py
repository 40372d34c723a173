"""``codeloop cleanup``: remove the sandbox directories of codeloop processes that were killed."""

from __future__ import annotations

import argparse
import json
import re

from codeloop.sandbox.leftovers import FAILED, MIN_LEGACY_AGE, REMOVED, SKIPPED, WOULD_REMOVE, sweep
from codeloop.text.terminal import printable

__all__ = ["DESCRIPTION", "add_arguments", "run"]

DESCRIPTION = (
    "Remove the session directories (<root>/codeloop-XXXXXXXX, also those holding only a jail's private "
    "/tmp) that codeloop processes left behind when they were killed (SIGKILL, out of memory, a cancelled "
    "job). Only a directory that is provably codeloop's and whose owner is provably gone is removed: its "
    "owner holds a lock on it for the session's life. Sessions start such a sweep themselves, at most "
    "every 10 minutes; this runs it now and says what it removed and what it left, and why. --legacy also "
    "removes directories made by codeloop versions before the lock (holders without one, and the private "
    "/tmp directories codeloop-tmp-XXXXXXXX; no proof of death there: only when unchanged for "
    "--older-than and no process works in them). Exit 1 when something could not be removed."
)

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``30m``, ``2h`` or ``1d``; at least ``MIN_LEGACY_AGE``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a duration like 90s, 30m, 2h or 1d, got {text!r}")
    seconds = float(match[1]) * _UNITS[match[2]]
    if seconds < MIN_LEGACY_AGE:
        raise argparse.ArgumentTypeError(f"the age must be at least {MIN_LEGACY_AGE:g} s, got {text!r}")
    return seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        metavar="DIR",
        default=None,
        help="the sandbox root to clean (default: the system temp directory)",
    )
    parser.add_argument("--dry-run", action="store_true", help="say what would be removed; remove nothing")
    parser.add_argument(
        "--legacy",
        action="store_true",
        help="also remove lock-less directories of older codeloop versions (see --older-than)",
    )
    parser.add_argument(
        "--older-than",
        type=duration,
        default=3600.0,
        metavar="AGE",
        help="with --legacy: only directories unchanged for this long (90s, 30m, 2h, 1d; default 1h)",
    )


def run(args: argparse.Namespace) -> int:
    report = sweep(args.root, dry_run=args.dry_run, legacy=args.legacy, older_than=args.older_than)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for verdict in report.verdicts:
            if verdict.action == SKIPPED and not args.verbose:
                continue
            print(printable(f"{verdict.action}: {verdict.path}: {verdict.reason}"))
        counts = {action: len(report.of(action)) for action in (REMOVED, WOULD_REMOVE, SKIPPED, FAILED)}
        done = f"{counts[WOULD_REMOVE]} would be removed" if args.dry_run else f"{counts[REMOVED]} removed"
        line = f"codeloop cleanup: {report.root}: {done}, {counts[SKIPPED]} left"
        if counts[FAILED]:
            line += f", {counts[FAILED]} could not be removed"
        if counts[SKIPPED] and not args.verbose:
            line += " (-v says why each was left)"
        print(printable(line))
    return 1 if report.of(FAILED) else 0
