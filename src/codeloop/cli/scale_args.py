"""The ``--ray`` options of ``codeloop eval`` and ``codeloop run --batch`` (see docs/scale.md)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from codeloop.errors import ConfigError

if TYPE_CHECKING:
    from codeloop.scale import RayOptions

__all__ = ["add_ray_arguments", "ray_options"]


def add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    """``--ray ADDRESS`` and the pool's shape (shared by ``eval`` and ``run --batch``)."""
    group = parser.add_argument_group("on a Ray cluster (pip install 'codeloop[ray]'; docs/scale.md)")
    group.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run the work on the Ray cluster at ADDRESS (HOST:PORT, or auto): a pool of actors, each "
        "with its own model and sandbox; the files written are those of a local run",
    )
    group.add_argument("--ray-actors", type=int, default=None, metavar="N", help="actors (default: as many as the CPUs hold)")
    group.add_argument(
        "--ray-cpus", type=float, default=1.0, metavar="CPUS", help="CPUs reserved per actor, fractions allowed (default 1)"
    )
    group.add_argument(
        "--ray-threads", type=int, default=None, metavar="N", help="model threads per actor (default: its CPUs, at least 1)"
    )


def ray_options(args: argparse.Namespace) -> RayOptions:
    """The ``--ray*`` options as ``codeloop.scale.RayOptions`` (Ray is imported only when used)."""
    from codeloop.scale import RayOptions

    if args.ray_threads is not None and args.ray_threads < 1:
        raise ConfigError(f"--ray-threads must be at least 1, got {args.ray_threads}")
    return RayOptions(args.ray, actors=args.ray_actors, cpus=args.ray_cpus, threads=args.ray_threads)

