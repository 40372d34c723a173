"""Glue between the launch seam (``launcher.build_launch``) and the jail layers.

``jail_launch`` takes the plain launch (process group, clean environment) and returns the
jailed one; ``require_layers`` is the one place that refuses a session whose host lacks a layer
the caller named, with every missing layer and its reason in the message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from codeloop.errors import SandboxUnavailable
from codeloop.sandbox.jail.jailer import WorkerJail
from codeloop.sandbox.jail.policy import JailPolicy, check_layer_names, check_limits

if TYPE_CHECKING:
    from codeloop.sandbox.jail.uids import UidLease
    from codeloop.sandbox.launch_types import Launch, LaunchSpec

__all__ = ["jail_launch", "missing_layers_line", "require_layers", "required_layers"]


def require_layers(isolation: Mapping[str, bool], notes: Iterable[str], required: Iterable[str]) -> None:
    """Raise SandboxUnavailable unless every layer in ``required`` is active."""
    wanted = check_layer_names(required)
    missing = [name for name in wanted if not isolation.get(name, False)]
    if not missing:
        return
    reasons = {n.split(":", 1)[0]: n for n in notes}
    detail = "; ".join(reasons.get(name, f"{name}: not active") for name in missing)
    raise SandboxUnavailable(
        f"refusing to start: required isolation layer(s) {', '.join(missing)} unavailable on this host ({detail})"
    )


def missing_layers_line(isolation: Mapping[str, bool]) -> str | None:
    """One line for a face to print when a layer is off; None when all are on."""
    off = sorted(name for name, on in isolation.items() if not on)
    if not off:
        return None
    return f"codeloop: warning: sandbox layers off on this host: {', '.join(off)} (see sb.isolation / SECURITY.md)"


def _chain(first: Callable[[], None] | None, second: Callable[[], None] | None) -> Callable[[], None] | None:
    if first is None or second is None:
        return first or second
    a, b = first, second

    def both() -> None:
        a()
        b()

    return both


def required_layers(spec: LaunchSpec, isolation: Mapping[str, bool]) -> list[str]:
    """The layers ``spec`` insists on (the session folds ``strict`` into ``require``)."""
    return list(dict.fromkeys(spec.require))


def jail_launch(spec: LaunchSpec, plain: Launch, uid_lease: UidLease | None = None) -> Launch:
    """The plain launch wrapped in every layer this host allows; refuses on a missing required one."""
    policy = JailPolicy(
        session_dir=spec.session_dir,
        memory_mb=spec.memory_mb,
        cpu_seconds=spec.cpu_seconds if spec.cpu_seconds is not None else JailPolicy.cpu_seconds,
        network=spec.network,
        read_paths=(spec.worker.parent,),
        python=spec.python,
        **check_limits(spec.limits),
    )
    jail = WorkerJail(policy, uid_lease=uid_lease)
    try:
        isolation = {**plain.isolation, **jail.isolation}
        notes = [n for n in plain.notes if n.split(":", 1)[0] not in jail.isolation] + jail.notes
        require_layers(isolation, notes, required_layers(spec, isolation))
        if jail.refusal is not None:
            raise SandboxUnavailable(jail.refusal)
        cmd = jail.wrap(plain.argv)
    except BaseException:
        jail.close()
        raise
    return replace(
        plain,
        argv=cmd.argv,
        env={**plain.env, **cmd.env},
        pass_fds=tuple(dict.fromkeys((*plain.pass_fds, *cmd.pass_fds))),
        preexec_fn=_chain(plain.preexec_fn, cmd.preexec_fn),
        isolation=isolation,
        notes=notes,
        jail=jail,
    )
