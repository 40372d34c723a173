"""Choosing training examples, and the adapter registry behind ``BASE+NAME`` model names."""

from __future__ import annotations

from pathlib import Path

import pytest

from codeloop.errors import ConfigError
from codeloop.llm.adapters import find_adapter, list_adapters, ran_spec, register_adapter, split_adapter
from codeloop.selftrain.sample import Sample, select_examples


def _s(task: str, i: int, code: str | None, verified: bool) -> Sample:
    return Sample(task, i, f"```python\n{code}\n```", code, "ok", "1\n", verified, 10, 0.1)


def test_select_keeps_verified_deduplicated_shortest() -> None:
    samples = [
        _s("a", 0, "x = 1\nprint(x)", True),
        _s("a", 1, "print(1)", True),
        _s("a", 2, "print( 1 )", True),  # the same program as #1 once normalised
        _s("a", 3, "print(2)", False),
        _s("b", 0, "print(3)", False),
    ]
    kept = select_examples(samples, per_task=2)
    assert [(s.task_id, s.index) for s in kept] == [("a", 1), ("a", 0)]
    assert select_examples(samples, per_task=1)[0].index == 1


def test_split_adapter_names() -> None:
    assert split_adapter("qwen-coder-0.5b+mine") == ("qwen-coder-0.5b", "mine")
    assert split_adapter("qwen-coder-0.5b") == ("qwen-coder-0.5b", None)
    assert split_adapter("openai:a+b") == ("openai:a+b", None)
    with pytest.raises(ConfigError, match="BASE\\+ADAPTER"):
        split_adapter("qwen+")


def test_register_find_and_list(tmp_path: Path) -> None:
    src = tmp_path / "a.gguf"
    src.write_bytes(b"GGUF fake adapter bytes")
    adapter = register_adapter("mine", src, "qwen-coder-0.5b", {"steps": 3})
    assert adapter.path.read_bytes() == src.read_bytes()
    assert find_adapter("mine") == adapter.path
    assert [a.name for a in list_adapters()] == ["mine"]
    assert list_adapters()[0].info["steps"] == 3
    with pytest.raises(ConfigError, match=r"unknown adapter 'other'.*mine"):
        find_adapter("other")
    with pytest.raises(ConfigError, match="bad adapter name"):
        register_adapter("../evil", src, "x")
    with pytest.raises(ConfigError, match="adapter file not found"):
        find_adapter(str(tmp_path / "missing.gguf"))


def test_adapter_on_a_server_model_is_refused(tmp_path: Path) -> None:
    from codeloop.llm import get_model

    src = tmp_path / "a.gguf"
    src.write_bytes(b"x")
    register_adapter("mine", src, "qwen-coder-0.5b")
    with pytest.raises(ConfigError, match="embedded models only"):
        get_model("some-server-model+mine", base_url="http://127.0.0.1:9/v1")


def test_an_adapter_model_is_named_by_what_runs(tmp_path: Path) -> None:
    """BASE+NAME reports BASE+NAME:lora or BASE+NAME:merged, a name that loads the same again; a path
    to an adapter file stays as written (always the runtime adapter). Real loading: tests/selftrain/test_merge.py."""
    from codeloop.llm import check_model

    assert [ran_spec(s, m) for s, m in (("st3", True), ("st3", False), ("st3:lora", False), ("st3:merged", True))] == [
        "st3:merged", "st3:lora", "st3:lora", "st3:merged"
    ]
    src = tmp_path / "a.gguf"
    src.write_bytes(b"GGUF fake adapter bytes")
    register_adapter("mine", src, "qwen-coder-0.5b")
    for name in ("qwen+mine", "qwen-coder-0.5b+mine", "qwen-coder-0.5b+mine:lora"):
        checked = check_model(name)
        assert (checked.name, checked.embedded, checked.adapter) == ("qwen-coder-0.5b+mine:lora", True, True)
    assert check_model(check_model("qwen+mine").name) == check_model("qwen+mine")
    with pytest.raises(ConfigError, match="no current merged model"):
        check_model("qwen+mine:merged")
    assert check_model(f"qwen+{src}").name == f"qwen-coder-0.5b+{src}"
