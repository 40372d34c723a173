"""Keep the final answer true to what the code printed.

Small models often run the right program and then misreport its output in prose. The loop
checks the model's answer against the executed evidence and, when they disagree, answers with
the evidence itself.
"""

from __future__ import annotations

import math
import re

__all__ = ["echoes", "ground_answer", "is_grounded", "numbers_in"]

_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_LONG_EVIDENCE = 300
_BOOL = {"true": True, "yes": True, "false": False, "no": False}
_NEGATION = re.compile(r"\b(?:not|no|never|none|cannot)\b|n't\b", re.IGNORECASE)


def numbers_in(text: str) -> list[str]:
    """The numbers written in a text, thousands separators removed (``"1,234.5"`` -> ``"1234.5"``)."""
    return [m.replace(",", "") for m in _NUMBER.findall(text)]


def _same_number(claimed: str, actual: str) -> bool:
    """Whether ``claimed`` states ``actual``, allowing the claim to round it (3.33 states 3.3333)."""
    try:
        a, e = float(claimed), float(actual)
    except ValueError:
        return False
    if math.isclose(a, e, rel_tol=1e-9, abs_tol=1e-12):
        return True
    decimals = len(claimed.split(".")[1]) if "." in claimed and "e" not in claimed.lower() else 0
    return abs(e) < 1e15 and round(e, decimals) == a


def _norm_text(text: str) -> str:
    return re.sub(r"[\s'\"`*.,:;!?()\[\]]+", " ", text.lower()).strip()


def is_grounded(answer: str, evidence: str, given: str = "") -> bool:
    """True unless the answer's numbers or words contradict the evidence.

    Numbers in ``given`` (the task and the code that ran) are ignored in the answer ("the sum
    of 1 to 100 is 5050", "the square of 10 is 100" after ``x = 10``),
    every other number the answer states must appear in the evidence, and when the evidence
    holds numbers the answer must state at least one of them. Text evidence must be quoted.
    """
    verdict = _bool_answer_grounded(answer, evidence)
    if verdict is not None:
        return verdict
    given_numbers = set(numbers_in(given))
    claimed = [n for n in numbers_in(answer) if n not in given_numbers]
    shown = numbers_in(evidence)
    if shown:
        if not claimed:
            # The answer only restates given numbers: it must then quote the output's last line.
            return _norm_text(evidence.splitlines()[-1]) in _norm_text(answer)
        return all(any(_same_number(c, s) for s in shown) for c in claimed)
    if len(evidence) > _LONG_EVIDENCE or evidence.count("\n") > 3:
        return True  # long text output: nothing reliable to compare, trust the model's summary
    needle = _norm_text(evidence)
    return bool(needle) and needle in _norm_text(answer)


def _bool_answer_grounded(answer: str, evidence: str) -> bool | None:
    """For a bare True/False/Yes/No answer (the form a task asked for): does it agree with the output?

    The output may say it in words ("2000 is a leap year."), so a bare "True" cannot quote it;
    it agrees when its polarity matches the output's last boolean word or, lacking one, whether
    the output is a negation. None when the answer is not a bare boolean.
    """
    words = _norm_text(answer).split()
    if len(words) != 1 or words[0] not in _BOOL:
        return None
    said = _BOOL[words[0]]
    shown = [_BOOL[w] for w in _norm_text(evidence).split() if w in _BOOL]
    if shown:
        return shown[-1] == said
    return said != bool(_NEGATION.search(evidence))


def ground_answer(answer: str, evidence: str | None, given: str = "") -> tuple[str, str]:
    """The answer to report and where it came from: ``("...", "model")`` or ``(evidence, "output")``."""
    answer = answer.strip()
    if evidence is None:
        return answer, "model"
    if answer and is_grounded(answer, evidence, given):
        return answer, "model"
    return evidence.strip(), "output"


def echoes(answer: str, message: str) -> bool:
    """Whether the answer merely repeats (part of) a message the loop sent, e.g. "The code failed..."."""
    said = _norm_text(answer)
    return len(said) >= 12 and said in _norm_text(message)
