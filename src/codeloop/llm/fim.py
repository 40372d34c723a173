"""Fill-in-the-middle (FIM) prompts: one template per model family, shared by every caller.

llama-cpp-python 0.3.36's ``create_completion(suffix=...)`` hard-codes the FIM token ids to 0, so
codeloop builds FIM prompts itself and sends them as raw text (``Model.complete_text``); the
embedded runtime tokenises raw prompts with ``special=True``, so the markers become the model's
special tokens. A model that knows other markers (codeloop's own small LM, ``lm:DIR``) sets a
``fim_template`` attribute; everything else gets Qwen2.5-Coder's PSM template.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "QWEN_FIM",
    "FimTemplate",
    "enough_lines",
    "fim_context",
    "fim_prompt",
    "fim_template_of",
    "finish_middle",
    "keep_lines",
    "middle_candidates",
    "parses",
    "split_trailing_space",
    "suffix_overlaps",
]


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


# --- Post-processing of a generated middle (shared by ``codeloop complete`` and infill benchmarks) ---

_CLOSERS = ")]}"


def fim_context(before: str, after: str, *, max_before: int = 3000, max_after: int = 1000) -> tuple[str, str]:
    """``before`` and ``after`` cut to at most ``max_before``/``max_after`` characters at line
    boundaries, keeping the text nearest the cursor (a smaller prompt is a faster completion)."""
    if len(before) > max_before:
        cut = before[-max_before:]
        nl = cut.find("\n")
        before = cut[nl + 1 :] if 0 <= nl < len(cut) - 1 else cut
    if len(after) > max_after:
        cut = after[:max_after]
        nl = cut.rfind("\n")
        after = cut[: nl + 1] if nl > 0 else cut
    return before, after


def split_trailing_space(before: str) -> tuple[str, str]:
    """``before`` without the spaces that end it mid-line, and those spaces.

    A prompt that ends in a space is rare in training text (tokenisers glue the space to the next
    word), so a model often answers it with a new line instead of the rest of the statement. Send
    the stripped prefix and drop leading spaces from the middle: the file already holds them.
    A line holding only indentation is left alone.
    """
    head = before.rstrip(" \t")
    line_start = head.rfind("\n") + 1
    if head == before or len(head) == line_start:
        return before, ""
    return head, before[len(head) :]


def enough_lines(text: str, max_lines: int | None) -> bool:
    """Whether a middle generated so far already holds ``max_lines`` complete lines (a generation
    can stop there); a leading line break (the middle starts on the next line) does not count."""
    if max_lines is None:
        return False
    start = len(text) - len(text.lstrip())
    return start < len(text) and text[start:].count("\n") >= max_lines


def keep_lines(text: str, max_lines: int | None) -> str:
    """The first ``max_lines`` lines of a middle (all when None); a leading line break is kept so a
    middle that starts a new line still does, and trailing blank lines are dropped."""
    parts = text.split("\n")
    lead = 0
    while lead < len(parts) - 1 and not parts[lead].strip():
        lead += 1
    if max_lines is not None:
        parts = parts[: lead + max_lines]
    while len(parts) > 1 and not parts[-1].strip():
        parts.pop()
    return "\n".join(parts)


def suffix_overlaps(middle: str, after: str) -> list[int]:
    """The lengths ``k`` (longest first) for which the middle's last ``k`` characters repeat the
    first ``k`` of ``after``: text the model wrote although the suffix already holds it."""
    limit = min(len(middle), len(after))
    return [k for k in range(limit, 0, -1) if middle.endswith(after[:k]) and after[:k].strip()]


def parses(code: str) -> bool:
    """Whether ``code`` is valid Python (compiled to a syntax tree only: nothing runs)."""
    try:
        compile(code, "<fim>", "exec", flags=0x400, dont_inherit=True)  # ast.PyCF_ONLY_AST
    except (SyntaxError, ValueError):
        return False
    return True


def _balanced_line(before: str, middle: str, after: str) -> bool:
    line = before[before.rfind("\n") + 1 :] + middle + after.split("\n", 1)[0]
    depth = 0
    for ch in line:
        if ch in "([{":
            depth += 1
        elif ch in _CLOSERS:
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def middle_candidates(middle: str, after: str) -> list[str]:
    """Ways to read a generated middle, most likely first: with the overlap with the suffix
    trimmed (longest first), as generated, then with trailing closing brackets dropped."""
    out: list[str] = [middle[: len(middle) - k] for k in suffix_overlaps(middle, after)]
    out.append(middle)
    trimmed = middle.rstrip()
    while trimmed and trimmed[-1] in _CLOSERS:
        trimmed = trimmed[:-1].rstrip()
        out.append(trimmed)
    seen: set[str] = set()
    return [c for c in out if not (c in seen or seen.add(c))]  # type: ignore[func-returns-value]


def finish_middle(
    middle: str, before: str, after: str, *, max_lines: int | None = 1, stops: tuple[str, ...] = ()
) -> str:
    """Turn a model's raw middle into the text to insert between ``before`` and ``after``.

    Cut at any stop text, keep ``max_lines`` lines (None: all), drop lines that start repeating the
    suffix, trim the overlap with the suffix (closing brackets the suffix already holds), and where
    Python's parser can judge the file, return the first candidate (:func:`middle_candidates`) that
    makes ``before + middle + after`` parse; else the first whose line's brackets balance.
    """
    for stop in stops:
        if stop and stop in middle:
            middle = middle[: middle.index(stop)]
    text = keep_lines(middle, max_lines)
    rest_line, _, later = after.partition("\n")
    if "\n" in text.lstrip("\n"):
        # a multi-line middle that goes on to write the suffix's next line again: cut before it
        follow = next((ln.strip() for ln in later.split("\n") if ln.strip()), None)
        lines = text.split("\n")
        for i in range(1, len(lines)):
            if follow is not None and lines[i].strip() == follow:
                text = "\n".join(lines[:i]).rstrip(" \t")
                break
    if not rest_line.strip() or after.startswith("\n"):
        text = text.rstrip(" \t")
    candidates = middle_candidates(text, after)
    for candidate in candidates:
        if parses(before + candidate + after):
            return candidate
    for candidate in candidates:
        if _balanced_line(before, candidate, after):
            return candidate
    return candidates[0]
