"""Settings precedence: arguments, then env vars, then config.toml, then defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codeloop.errors import ConfigError
from codeloop.llm.settings import (
    EmbeddedSettings,
    RemoteSettings,
    configured_aliases,
    configured_default,
    physical_cores,
)


def write_config(home: Path, text: str) -> None:
    (home / "config.toml").write_text(text, encoding="utf-8")


def test_defaults_without_config() -> None:
    s = EmbeddedSettings.resolve()
    assert s.n_ctx == 8192
    assert s.n_batch == 512
    assert s.flash_attn is False
    assert s.repack is None
    assert s.n_threads == physical_cores() >= 1
    assert s.adaptive_threads is True
    r = RemoteSettings.resolve()
    assert (r.connect_timeout, r.read_timeout, r.max_retries) == (5.0, 300.0, 2)


def test_physical_cores_is_within_the_cpus_we_may_use() -> None:
    assert 1 <= physical_cores() <= len(os.sched_getaffinity(0))


def test_arguments_beat_env_beat_config(codeloop_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(codeloop_home, "[model]\nn_ctx = 2048\nn_threads = 1\nread_timeout = 9.5\nmax_retries = 0\n")
    assert EmbeddedSettings.resolve().n_ctx == 2048
    assert RemoteSettings.resolve().read_timeout == 9.5
    assert RemoteSettings.resolve().max_retries == 0
    monkeypatch.setenv("CODELOOP_N_CTX", "4096")
    assert EmbeddedSettings.resolve().n_ctx == 4096
    assert EmbeddedSettings.resolve(n_ctx=1024).n_ctx == 1024
    assert EmbeddedSettings.resolve(adaptive_threads=False).adaptive_threads is False
    assert EmbeddedSettings.resolve().n_threads == 1


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ("[model]\nn_ctx = 'big'\n", "n_ctx must be a non-negative integer"),
        ("[model]\nn_ctx = 10\n", "n_ctx must be at least 64"),
        ("[model]\nflash_attn = 3\n", "flash_attn must be true or false"),
        ("model = 3\n", "[model] must be a table"),
    ],
)
def test_bad_config_values_are_refused(codeloop_home: Path, config: str, needle: str) -> None:
    write_config(codeloop_home, config)
    with pytest.raises(ConfigError) as info:
        EmbeddedSettings.resolve()
    assert needle in str(info.value)


def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODELOOP_N_THREADS", "two")
    with pytest.raises(ConfigError, match=r"\$CODELOOP_N_THREADS"):
        EmbeddedSettings.resolve()


def test_unknown_option_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown model option"):
        EmbeddedSettings.resolve(n_gpu=3)
    with pytest.raises(ConfigError, match="read_timeout must be a positive number"):
        RemoteSettings.resolve(read_timeout=0)


def test_repack_auto_in_config(codeloop_home: Path) -> None:
    write_config(codeloop_home, '[model]\nrepack = "auto"\n')
    assert EmbeddedSettings.resolve().repack is None
    write_config(codeloop_home, "[model]\nrepack = false\n")
    assert EmbeddedSettings.resolve().repack is False


def test_default_model_from_env_then_config(codeloop_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert configured_default() is None
    write_config(codeloop_home, '[model]\ndefault = "fast"\n[aliases]\nFast = "smollm2-135m"\n')
    assert configured_default() == "fast"
    assert configured_aliases() == {"fast": "smollm2-135m"}
    monkeypatch.setenv("CODELOOP_MODEL", "openai:gpt-4o-mini")
    assert configured_default() == "openai:gpt-4o-mini"


def test_bad_aliases_table(codeloop_home: Path) -> None:
    write_config(codeloop_home, "[aliases]\nfast = 3\n")
    with pytest.raises(ConfigError, match=r"\[aliases\]"):
        configured_aliases()
