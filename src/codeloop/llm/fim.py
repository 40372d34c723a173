"""Fill-in-the-middle (FIM) prompts: one template per model family, shared by every caller.

llama-cpp-python 0.3.36's ``create_completion(suffix=...)`` hard-codes the FIM token ids to 0, so
codeloop builds FIM prompts itself and sends them as raw text (``Model.complete_text``); the
embedded runtime tokenises raw prompts with ``special=True``, so the markers become the model's
special tokens. A model that knows other markers (codeloop's own small LM, ``lm:DIR``) sets a
``fim_template`` attribute; everything else gets Qwen2.5-Coder's PSM template.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["QWEN_FIM", "FimTemplate", "fim_prompt", "fim_template_of", "finish_middle", "middle_end"]


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


# -- Post-processing a generated middle (shared by the ``complete`` workflow and the infill benchmark) --
#
# A FIM model ends its middle with an end-of-text marker (the template's ``stops``), but a small one
# often goes on: it writes the suffix again, or a second line where one was asked for. The two
# functions below decide where a middle ends: ``middle_end`` while streaming (stop reading there),
# ``finish_middle`` on the whole text (cut, trim the overlap with the suffix, end the line).


def _first_code_line(text: str) -> str | None:
    """The first line of ``text`` with something on it, without its line break."""
    for line in text.splitlines():
        if line.strip():
            return line.rstrip()
    return None


def middle_end(text: str, after: str, *, single_line: bool = False) -> int | None:
    """Where the middle in ``text`` ends, or ``None`` while it may still go on.

    * ``single_line``: after the first line that has code on it (its line break included), for a
      cursor whose completion is one line;
    * before a complete line equal to the suffix's first code line: the model has gone past the
      hole and is writing the code that follows it.

    Only complete lines (ending in a line break) are judged, so it is safe to call on a stream.
    """
    resume = _first_code_line(after)
    offset = 0
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            return None
        if resume is not None and line.strip() and line.rstrip() == resume:
            return offset
        offset += len(line)
        if single_line and line.strip():
            return offset
    return None


def finish_middle(text: str, before: str, after: str, *, single_line: bool = False) -> str:
    """The text to insert between ``before`` and ``after``, from a model's raw middle ``text``.

    1. cut where :func:`middle_end` says (a second line in ``single_line`` mode, a repeated suffix);
    2. drop an end of the middle that repeats the start of the suffix (``foo(x|)`` completed as
       ``x)`` becomes ``x``), when that overlap has some code in it (not only whitespace) and,
       if it spans lines, starts at the start of a line;
    3. when the cursor sits at the start of a line (``before`` ends with a line break) in front of
       code on that line, end the middle with a line break, so the suffix stays on its own line.
    """
    end = middle_end(text, after, single_line=single_line)
    if end is None and single_line and text.strip():
        # The model ended on an incomplete line: that line is the middle.
        end = len(text)
    middle = text if end is None else text[:end]
    for k in range(min(len(middle), len(after)), 0, -1):
        overlap, kept = after[:k], middle[:-k]
        # An overlap across lines must be whole lines (``        return x`` does not end in ``    return x``).
        whole = "\n" not in overlap or not kept or kept.endswith("\n")
        if middle.endswith(overlap) and overlap.strip() and whole:
            middle = kept
            break
    at_line_start = not before or before.endswith("\n")
    if middle.strip() and at_line_start and after and not after.startswith("\n") and not middle.endswith("\n"):
        middle += "\n"
    return middle
