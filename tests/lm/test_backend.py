"""Use it: ``lm:DIR`` is a codeloop Model that completes raw text and fills in the middle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from codeloop.errors import ModelError
from codeloop.llm import get_model
from codeloop.llm.base import Model
from codeloop.llm.fim import QWEN_FIM, fim_prompt, fim_template_of
from codeloop.llm.types import FinishReason
from codeloop.lm.backend import LM_FIM, LMModel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(trained: tuple[Path, dict[str, Any]]) -> LMModel:
    out, _ = trained
    m = get_model(f"lm:{out}", n_threads=1)
    assert isinstance(m, LMModel) and isinstance(m, Model)
    return m


def test_get_model_gives_a_completion_model_with_its_own_fim_markers(model: LMModel) -> None:
    assert model.name.startswith("lm:")
    assert fim_template_of(model) is LM_FIM and LM_FIM != QWEN_FIM
    prompt = fim_prompt(model, "def add(a, b):\n    return ", "\n")
    assert prompt.startswith("<|fim_prefix|>") and prompt.endswith("<|fim_middle|>")
    reply = model.complete_text(prompt, max_tokens=16, temperature=0)
    assert "<|" not in reply.text  # the markers never leak into the middle
    assert reply.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)
    assert reply.usage.completion_tokens is not None and 1 <= reply.usage.completion_tokens <= 16


def test_raw_completion_streams_the_same_text_it_returns(model: LMModel) -> None:
    whole = model.complete_text("import ", max_tokens=24, temperature=0)
    stream = model.stream_text("import ", max_tokens=24, temperature=0)
    assert "".join(stream) == whole.text == stream.finish().text
    assert whole.usage.prompt_tokens is not None and whole.usage.prompt_tokens >= 2


def test_stop_strings_cut_the_text(model: LMModel) -> None:
    reply = model.complete_text("class Foo:\n    def ", max_tokens=64, temperature=0, stop=["\n"])
    assert "\n" not in reply.text


def test_a_long_fim_prompt_keeps_the_text_near_the_cursor(model: LMModel) -> None:
    before = "x = 1\n" * 2000
    after = "y = 2\n" * 2000
    ids = model._prompt_ids(fim_prompt(model, before, after), 16)
    assert len(ids) < model.lm.config.block_size
    text = model.lm.tokenizer.decode(ids)
    assert text.startswith("<|fim_prefix|>") and text.endswith("<|fim_middle|>")
    assert "x = 1\n<|fim_suffix|>y = 2\n" in text  # the prefix's tail and the suffix's head survive
    assert model.complete_text(fim_prompt(model, before, after), max_tokens=8, temperature=0).text is not None


def test_chat_is_a_clear_error(model: LMModel) -> None:
    with pytest.raises(ModelError, match="without a chat template"):
        model.complete([{"role": "user", "content": "hi"}])


def test_bad_lm_names_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no checkpoint"):
        get_model(f"lm:{tmp_path}")


def test_cli_and_registry_do_not_import_torch() -> None:
    code = (
        "import sys, codeloop.cli, codeloop.llm.registry, codeloop.cli.lm_cmd, codeloop.lm\n"
        "from codeloop.cli import build_parser\n"
        "build_parser(['lm', 'train', '--help'])\n"
        "print('torch' in sys.modules, 'tokenizers' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
