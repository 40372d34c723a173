"""Fill-in-the-middle (FIM) prompts: one template per model family, shared by every caller.

llama-cpp-python 0.3.36's ``create_completion(suffix=...)`` hard-codes the FIM token ids to 0, so
codeloop builds FIM prompts itself and sends them as raw text (``Model.complete_text``); the
embedded runtime tokenises raw prompts with ``special=True``, so the markers become the model's
special tokens. A model that knows other markers (codeloop's own small LM, ``lm:DIR``) sets a
``fim_template`` attribute; everything else gets Qwen2.5-Coder's PSM template.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["QWEN_FIM", "FimTemplate", "fim_prompt", "fim_template_of"]


@dataclass(frozen=True)
class FimTemplate:
    """The markers of a prefix-suffix-middle (PSM) prompt, and the texts that end a middle."""

    prefix: str
    suffix: str
    middle: str
    stops: tuple[str, ...] = ()

    def prompt(self, before: str, after: str) -> str:
        """The PSM prompt: the model continues it with the text that goes between ``before`` and ``after``."""
        return f"{self.prefix}{before}{self.suffix}{after}{self.middle}"


#: Qwen2.5-Coder's FIM markers (the base and instruct GGUFs both carry them as special tokens).
QWEN_FIM = FimTemplate(
    prefix="<|fim_prefix|>",
    suffix="<|fim_suffix|>",
    middle="<|fim_middle|>",
    stops=("<|fim_pad|>", "<|endoftext|>", "<|file_sep|>", "<|repo_name|>", "<|im_end|>"),
)


def fim_template_of(model: object) -> FimTemplate:
    """The template ``model`` declares (attribute ``fim_template``), else Qwen2.5-Coder's."""
    template = getattr(model, "fim_template", None)
    return template if isinstance(template, FimTemplate) else QWEN_FIM


def fim_prompt(model: object, before: str, after: str) -> str:
    """The FIM prompt for ``model`` with the cursor between ``before`` and ``after``."""
    return fim_template_of(model).prompt(before, after)
