"""SandboxConfig: one frozen, validated description of a session (also the pool's key); one layer registry."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from codeloop.errors import ConfigError
from codeloop.sandbox import Sandbox, layers
from codeloop.sandbox.config import SandboxConfig, positive
from codeloop.sandbox.jail import policy


def test_a_config_is_normalised_frozen_and_hashable() -> None:
    config = SandboxConfig(env={"B": "2", "A": "1"}, limits={"processes": 8}, strict=True)  # type: ignore[arg-type]
    assert config.env == (("A", "1"), ("B", "2")) and config.limits == (("processes", 8),)
    assert config.python == sys.executable and config.output_hard_limit == 64 << 20
    assert set(layers.strict_layers(network=False)) <= set(config.require)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.timeout = 1.0  # type: ignore[misc]
    assert {config: 1}[config] == 1


def test_the_pool_key_ignores_what_only_the_session_uses() -> None:
    a = SandboxConfig(timeout=1.0, max_repr=10, stop_grace=0.1)
    b = SandboxConfig(timeout=99.0, max_files=3)
    assert a != b and a.pool_key == b.pool_key
    assert SandboxConfig(memory_mb=256).pool_key != a.pool_key
    assert SandboxConfig(env={"X": "1"}).pool_key != a.pool_key  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"timeout": True}, "timeout must be a positive number"),
        ({"memory_mb": -1}, "memory_mb must be a positive number"),
        ({"max_repr": -1}, "max_repr must be a non-negative integer"),
        ({"max_output": 10}, "max_output must be an integer of at least 64"),
        ({"limits": {"processes": 0}}, "processes must be a positive integer"),
        ({"limits": {"nope": 1}}, "unknown sandbox limit"),
        ({"require": ("nope",)}, "unknown isolation layer"),
        ({"python": "/nonexistent/python"}, "no usable Python interpreter"),
    ],
)
def test_bad_settings_are_one_clear_config_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SandboxConfig(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        Sandbox(prestart=False, **kwargs)  # type: ignore[arg-type]


def test_positive_is_the_one_number_check() -> None:
    positive("x", 1.5)
    positive("x", None, allow_none=True)
    with pytest.raises(ConfigError, match="x must be a positive integer"):
        positive("x", 1.5, integer=True)
    with pytest.raises(ConfigError, match="processes must be a positive integer"):
        policy.JailPolicy(session_dir=__import__("pathlib").Path("/tmp/x"), processes=0)


def test_one_registry_names_every_layer() -> None:
    assert list(layers.describe()) == list(layers.names()) and all(layers.describe().values())
    with Sandbox(jail=False, prestart=False) as sb:  # the plain launch reports every layer too
        assert list(sb.isolation) == list(layers.names())
        assert {name for name, on in sb.isolation.items() if on} == set(layers.plain_names())


def test_every_planned_step_is_an_in_worker_function(tmp_path: __import__("pathlib").Path) -> None:
    """Every step the layers plan on this host is a public function of inworker.py, in the order
    the worker must apply them; the plan is plain JSON, so it survives the trip through the env."""
    import json

    from codeloop.sandbox import hostfs
    from codeloop.sandbox.jail import inworker, jailer

    session = hostfs.new_session_dir(tmp_path)
    jail = jailer.WorkerJail(policy.JailPolicy(session_dir=session))
    try:
        plan = json.loads(jail.wrap(["true"]).env[inworker.ENV_VAR])
    finally:
        jail.close()
        hostfs.remove_session(session)
    steps = [step for step, _kwargs, *_file in plan["steps"]]
    for step in steps:
        assert callable(getattr(inworker, step, None)) and not step.startswith("_"), step
    order = ["apply_rlimits", "drop_privileges", "drop_capabilities", "load_seccomp_fd", "landlock_restrict"]
    assert steps[0] == "apply_rlimits" and steps == sorted(steps, key=order.index)
    assert len({"drop_privileges", "drop_capabilities"} & set(steps)) == 1


def test_register_refuses_a_name_twice() -> None:
    with pytest.raises(ValueError, match="new name"):
        layers.register(layers.Rlimits())
    assert layers.names().count("rlimits") == 1
