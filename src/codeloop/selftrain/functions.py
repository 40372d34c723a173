"""HumanEval-style function tasks written for self-training, with hidden tests computed here.

Each task is a function to complete from its signature and a docstring with two examples, the
shape of a HumanEval prompt. Its hidden test is a ``check(candidate)`` of asserts whose expected
values come from a **reference implementation written here** (the task's
``canonical_solution``), run on the docstring's inputs, edge cases and further random inputs.
Families are seeded and vary the function's name, its parameters' names and the wording; a test
checks that no name or docstring is one of HumanEval's and that no ``bench/`` set is reused.
"""

from __future__ import annotations

import copy
import json
import random
import string
import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from codeloop.evals.problems import Problem

__all__ = [
    "FUNCTION_FAMILIES",
    "FunctionTask",
    "generate_function_tasks",
    "read_function_tasks",
    "write_function_tasks",
]


@dataclass(frozen=True)
class FunctionTask:
    """One function to complete: the prompt (signature + docstring), its hidden test, its reference body."""

    id: str
    family: str
    entry_point: str
    prompt: str
    test: str
    canonical_solution: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def problem(self) -> Problem:
        """The task as the eval harness's :class:`Problem` (what its prompts and checker take)."""
        return Problem(self.id, self.prompt, self.entry_point, self.test, self.canonical_solution)


@dataclass(frozen=True)
class _Family:
    names: Sequence[str]  # entry-point names to choose from
    params: Sequence[Sequence[str]]  # parameter-name sets to choose from
    types: Sequence[str]  # the annotation of each parameter
    returns: str
    wordings: Sequence[str]  # ``{p0}``, ``{p1}``, ... stand for the parameter names
    body: str  # the reference body, ``{p0}``... for the parameter names, indented by 4
    inputs: Callable[[random.Random], tuple[Any, ...]]
    edges: Sequence[tuple[Any, ...]] = ()


def _word(rng: random.Random, lo: int = 2, hi: int = 8, letters: str = string.ascii_lowercase) -> str:
    return "".join(rng.choice(letters) for _ in range(rng.randint(lo, hi)))


def _sentence(rng: random.Random, lo: int = 1, hi: int = 6) -> str:
    return " ".join(_word(rng, 1, 9) for _ in range(rng.randint(lo, hi)))


def _ints(rng: random.Random, lo: int = 0, hi: int = 9, vmin: int = -20, vmax: int = 50) -> list[int]:
    return [rng.randint(vmin, vmax) for _ in range(rng.randint(lo, hi))]


def _runs(rng: random.Random) -> str:
    return "".join(rng.choice("abcxyz") * rng.randint(1, 4) for _ in range(rng.randint(1, 6)))


_RUN_LENGTH_BODY = """\
    out = []
    i = 0
    while i < len({p0}):
        j = i
        while j < len({p0}) and {p0}[j] == {p0}[i]:
            j += 1
        out.append(%s)
        i = j
    return ''.join(out)
"""

_FAMILIES: dict[str, _Family] = {
    "char-tally": _Family(
        ("tally_chars", "count_members_of", "letters_in_pool"),
        (("text", "allowed"), ("phrase", "charset"), ("s", "pool")),
        ("str", "str"), "int",
        ("Return how many characters of {p0} also occur in {p1}; a repeated character counts each time.",
         "Count the characters of {p0} that belong to the string {p1} (every occurrence counts)."),
        "    return sum(1 for c in {p0} if c in {p1})\n",
        lambda r: (_sentence(r), "".join(r.sample(string.ascii_lowercase, r.randint(2, 7)))),
        (("", "abc"), ("hello", "")),
    ),
    "run-length-after": _Family(
        ("encode_runs", "squeeze_runs", "run_length_code"),
        (("text",), ("s",), ("word",)),
        ("str",), "str",
        ("Encode {p0} by writing each run of equal characters as the character followed by the run's length.",),
        _RUN_LENGTH_BODY % "{p0}[i] + str(j - i)",
        lambda r: (_runs(r),),
        (("",), ("q",)),
    ),
    "run-length-before": _Family(
        ("count_then_char", "prefix_run_counts", "runs_as_count_letter"),
        (("text",), ("s",), ("letters",)),
        ("str",), "str",
        ("Write each run of equal characters in {p0} as the run's length followed by the character, "
         "and return the joined result.",),
        _RUN_LENGTH_BODY % "str(j - i) + {p0}[i]",
        lambda r: (_runs(r),),
        (("",), ("zz",)),
    ),
    "every-kth-upper": _Family(
        ("upper_every", "shout_every_nth", "caps_stride"),
        (("text", "k"), ("s", "step"), ("phrase", "n")),
        ("str", "int"), "str",
        ("Return {p0} with every {p1}-th character (counting from 1) in upper case; the other characters "
         "are unchanged.",),
        "    return ''.join(c.upper() if (i + 1) % {p1} == 0 else c for i, c in enumerate({p0}))\n",
        lambda r: (_sentence(r, 1, 3), r.randint(2, 4)),
        (("", 2), ("abc", 1)),
    ),
    "longest-word": _Family(
        ("longest_token", "widest_word", "pick_long_word"),
        (("sentence",), ("text",), ("line",)),
        ("str",), "str",
        ("Return the longest word of {p0} (words are separated by whitespace); on a tie return the one that "
         "comes first, and return '' when there is no word.",),
        "    best = ''\n    for w in {p0}.split():\n        if len(w) > len(best):\n            best = w\n"
        "    return best\n",
        lambda r: (_sentence(r, 1, 7),),
        (("",), ("   ",)),
    ),
    "shortest-word": _Family(
        ("shortest_token", "tiniest_word", "pick_short_word"),
        (("sentence",), ("text",), ("line",)),
        ("str",), "str",
        ("Return the shortest word of {p0} (words are separated by whitespace); on a tie return the one "
         "that comes first, and return '' when there is no word.",),
        "    words = {p0}.split()\n    if not words:\n        return ''\n    best = words[0]\n"
        "    for w in words[1:]:\n        if len(w) < len(best):\n            best = w\n    return best\n",
        lambda r: (_sentence(r, 1, 7),),
        (("",), ("one",)),
    ),
    "shift-letters": _Family(
        ("rotate_letters", "shift_alphabet", "slide_letters"),
        (("text", "shift"), ("message", "k"), ("s", "offset")),
        ("str", "int"), "str",
        ("Shift every lowercase letter of {p0} forward by {p1} places in the alphabet, wrapping from 'z' "
         "back to 'a'; every other character stays as it is.",),
        "    return ''.join(chr((ord(c) - 97 + {p1}) % 26 + 97) if 'a' <= c <= 'z' else c for c in {p0})\n",
        lambda r: (_sentence(r, 1, 3) + r.choice(("", "!", " 42")), r.randint(1, 30)),
        (("", 3), ("xyz", 26)),
    ),
    "first-occurrences": _Family(
        ("unique_chars_in_order", "drop_repeated_chars", "first_seen_letters"),
        (("text",), ("s",), ("word",)),
        ("str",), "str",
        ("Return {p0} without every character that already appeared earlier in it, so that only the first "
         "occurrence of each character is kept.",),
        "    seen = set()\n    out = []\n    for c in {p0}:\n        if c not in seen:\n            seen.add(c)\n"
        "            out.append(c)\n    return ''.join(out)\n",
        lambda r: (_word(r, 3, 12, "abcdeabc"),),
        (("",), ("aaaa",)),
    ),
    "prefix-sums": _Family(
        ("prefix_totals", "accumulate_values", "cumulative_sums"),
        (("numbers",), ("values",), ("xs",)),
        ("list[int]",), "list[int]",
        ("Return the list whose i-th item is the sum of the first i+1 items of {p0}.",),
        "    out = []\n    total = 0\n    for x in {p0}:\n        total += x\n        out.append(total)\n"
        "    return out\n",
        lambda r: (_ints(r, 1, 8),),
        (([],),),
    ),
    "prefix-maxima": _Family(
        ("prefix_maxima", "high_water_marks", "best_so_far"),
        (("numbers",), ("readings",), ("xs",)),
        ("list[int]",), "list[int]",
        ("Return the list whose i-th item is the largest of the first i+1 items of {p0}.",),
        "    out = []\n    for x in {p0}:\n        out.append(x if not out or x > out[-1] else out[-1])\n"
        "    return out\n",
        lambda r: (_ints(r, 1, 8),),
        (([],), ([-5, -7],)),
    ),
    "neighbour-diffs": _Family(
        ("step_changes", "consecutive_gaps", "deltas_between"),
        (("values",), ("series",), ("xs",)),
        ("list[int]",), "list[int]",
        ("Return the differences {p0}[i + 1] - {p0}[i] of neighbouring items, in order; a list with fewer "
         "than two items gives [].",),
        "    return [b - a for a, b in zip({p0}, {p0}[1:])]\n",
        lambda r: (_ints(r, 2, 8),),
        (([],), ([4],)),
    ),
    "group-into-blocks": _Family(
        ("split_into_groups", "batch_items", "slice_in_blocks"),
        (("items", "size"), ("values", "n"), ("xs", "width")),
        ("list[int]", "int"), "list[list[int]]",
        ("Split {p0} into consecutive groups of {p1} items (the last group may be shorter) and return the "
         "list of groups.",),
        "    return [{p0}[i:i + {p1}] for i in range(0, len({p0}), {p1})]\n",
        lambda r: (_ints(r, 1, 9), r.randint(1, 4)),
        (([], 3),),
    ),
    "count-in-range": _Family(
        ("how_many_within", "count_between_bounds", "tally_in_band"),
        (("values", "low", "high"), ("numbers", "lo", "hi"), ("xs", "start", "stop")),
        ("list[int]", "int", "int"), "int",
        ("Return how many numbers x in {p0} satisfy {p1} <= x <= {p2}.",
         "Count the items of {p0} that lie between {p1} and {p2}, both bounds included."),
        "    return sum(1 for x in {p0} if {p1} <= x <= {p2})\n",
        lambda r: (_ints(r, 0, 10), r.randint(-10, 10), r.randint(11, 40)),
        (([], 0, 5), ([3, 3, 3], 3, 3)),
    ),
    "second-largest-distinct": _Family(
        ("runner_up_value", "second_highest_distinct", "next_to_max"),
        (("numbers",), ("values",), ("scores",)),
        ("list[int]",), "int | None",
        ("Return the second largest distinct value of {p0}, or None when it holds fewer than two distinct "
         "values.",),
        "    distinct = sorted(set({p0}))\n    return distinct[-2] if len(distinct) >= 2 else None\n",
        lambda r: (_ints(r, 1, 8, -5, 15),),
        (([],), ([7, 7],)),
    ),
    "rotate-left": _Family(
        ("rotate_left_by", "cycle_items_left", "turn_list_left"),
        (("items", "k"), ("values", "steps"), ("xs", "n")),
        ("list[int]", "int"), "list[int]",
        ("Rotate {p0} to the left by {p1} positions and return the new list ({p1} may exceed the length; "
         "an empty list stays empty).",),
        "    if not {p0}:\n        return []\n    k = {p1} % len({p0})\n    return {p0}[k:] + {p0}[:k]\n",
        lambda r: (_ints(r, 1, 7), r.randint(0, 12)),
        (([], 4),),
    ),
    "rotate-right": _Family(
        ("rotate_right_by", "cycle_items_right", "turn_list_right"),
        (("items", "k"), ("values", "steps"), ("xs", "n")),
        ("list[int]", "int"), "list[int]",
        ("Rotate {p0} to the right by {p1} positions and return the new list ({p1} may exceed the length; "
         "an empty list stays empty).",),
        "    if not {p0}:\n        return []\n    k = {p1} % len({p0})\n    return {p0}[len({p0}) - k:] + {p0}[:len({p0}) - k]\n",
        lambda r: (_ints(r, 1, 7), r.randint(0, 12)),
        (([], 4),),
    ),
    "interleave": _Family(
        ("weave_lists", "zip_alternating", "alternate_merge"),
        (("first", "second"), ("left", "right"), ("a", "b")),
        ("list[int]", "list[int]"), "list[int]",
        ("Return the items of {p0} and {p1} taken alternately, starting with {p0}; when one list runs out, "
         "the rest of the other follows.",),
        "    out = []\n    for i in range(max(len({p0}), len({p1}))):\n        if i < len({p0}):\n"
        "            out.append({p0}[i])\n        if i < len({p1}):\n            out.append({p1}[i])\n    return out\n",
        lambda r: (_ints(r, 0, 5), _ints(r, 0, 5)),
        (([], []), ([1], [])),
    ),
    "count-digit": _Family(
        ("count_digit_occurrences", "digit_frequency_of", "times_digit_appears"),
        (("n", "d"), ("number", "digit"), ("value", "target")),
        ("int", "int"), "int",
        ("Return how many times the digit {p1} appears in the decimal form of the integer {p0} "
         "(the sign is ignored).",),
        "    return str(abs({p0})).count(str({p1}))\n",
        lambda r: (r.randint(-10**7, 10**9), r.randint(0, 9)),
        ((0, 0), (-5, 5)),
    ),
    "digit-sum-divides": _Family(
        ("divisible_by_digit_sum", "is_niven_number", "digit_sum_divides"),
        (("n",), ("number",), ("value",)),
        ("int",), "bool",
        ("Return True when the positive integer {p0} is divisible by the sum of its decimal digits, else False.",),
        "    return {p0} % sum(int(c) for c in str({p0})) == 0\n",
        lambda r: (r.choice((r.randint(1, 2000), 18 * r.randint(1, 50))),),
        ((1,), (11,)),
    ),
    "binary-ones": _Family(
        ("count_set_bits", "ones_in_binary", "popcount_of"),
        (("n",), ("number",), ("value",)),
        ("int",), "int",
        ("Return the number of 1 digits in the binary representation of the non-negative integer {p0}.",),
        "    return bin({p0}).count('1')\n",
        lambda r: (r.randint(0, 10**6),),
        ((0,), (255,)),
    ),
    "invert-dict": _Family(
        ("invert_mapping", "keys_by_value", "reverse_lookup_table"),
        (("mapping",), ("table",), ("d",)),
        ("dict[str, int]",), "dict[int, list[str]]",
        ("Return a dict that maps each value of {p0} to the sorted list of the keys that have that value.",),
        "    out = {{}}\n    for key, value in {p0}.items():\n        out.setdefault(value, []).append(key)\n"
        "    return {{v: sorted(keys) for v, keys in out.items()}}\n",
        lambda r: ({_word(r, 1, 5): r.randint(0, 4) for _ in range(r.randint(1, 6))},),
        (({},),),
    ),
    "word-frequencies": _Family(
        ("word_frequencies", "count_words_ignoring_case", "tally_words"),
        (("text",), ("sentence",), ("document",)),
        ("str",), "dict[str, int]",
        ("Return a dict that maps each word of {p0}, lower-cased, to how many times it occurs; words are "
         "separated by whitespace.",),
        "    out = {{}}\n    for w in {p0}.lower().split():\n        out[w] = out.get(w, 0) + 1\n    return out\n",
        lambda r: (" ".join(r.choice(("Red", "red", "blue", "Green", "BLUE", "sky")) for _ in range(r.randint(1, 8))),),
        (("",),),
    ),
    "merge-sum": _Family(
        ("combine_counts", "merge_tallies", "add_dicts"),
        (("first", "second"), ("a", "b"), ("left", "right")),
        ("dict[str, int]", "dict[str, int]"), "dict[str, int]",
        ("Return a new dict with every key of {p0} and of {p1}; a key found in both maps to the sum of its "
         "two values.",),
        "    out = dict({p0})\n    for key, value in {p1}.items():\n        out[key] = out.get(key, 0) + value\n"
        "    return out\n",
        lambda r: (
            {r.choice("abcdefg"): r.randint(-5, 20) for _ in range(r.randint(0, 4))},
            {r.choice("abcdefg"): r.randint(-5, 20) for _ in range(r.randint(0, 4))},
        ),
        (({}, {}),),
    ),
    "group-by-initial": _Family(
        ("group_by_first_letter", "bucket_by_initial", "index_words_by_letter"),
        (("words",), ("names",), ("items",)),
        ("list[str]",), "dict[str, list[str]]",
        ("Return a dict that maps each first letter to the words of {p0} starting with it, in their "
         "original order; empty strings are skipped.",),
        "    out = {{}}\n    for w in {p0}:\n        if w:\n            out.setdefault(w[0], []).append(w)\n"
        "    return out\n",
        lambda r: ([_word(r, 0, 5, "abcab") for _ in range(r.randint(0, 6))],),
        (([],), ([""],)),
    ),
}

#: The function families, by name.
FUNCTION_FAMILIES: tuple[str, ...] = tuple(sorted(_FAMILIES))


def _reference(source: str, name: str) -> Callable[..., Any]:
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<reference {name}>", "exec"), namespace)  # our own reference code, never the model's
    fn: Callable[..., Any] = namespace[name]
    return fn


def _call(name: str, args: tuple[Any, ...]) -> str:
    return f"{name}({', '.join(repr(a) for a in args)})"


def _draw(family_name: str, rng: random.Random, serial: int, hidden: int) -> FunctionTask:
    fam = _FAMILIES[family_name]
    name = rng.choice(fam.names)
    params = list(rng.choice(fam.params))
    slots = {f"p{i}": p for i, p in enumerate(params)}
    wording = rng.choice(fam.wordings).format(**slots)
    signature = ", ".join(f"{p}: {t}" for p, t in zip(params, fam.types, strict=True))
    body = fam.body.format(**slots)
    reference = _reference(f"def {name}({signature}) -> {fam.returns}:\n{body}", name)

    def run(args: tuple[Any, ...]) -> Any:
        return reference(*copy.deepcopy(args))

    inputs: list[tuple[Any, ...]] = []
    seen: set[str] = set()
    for args in (*[fam.inputs(rng) for _ in range(hidden * 3)],):
        key = repr(args)
        if key not in seen:
            seen.add(key)
            inputs.append(args)
    shown, rest = inputs[:2], inputs[2 : 2 + hidden]
    for args in fam.edges:
        if repr(args) not in seen:
            rest.append(args)
    doc = textwrap.fill(wording, width=92, initial_indent="    ", subsequent_indent="    ").lstrip()
    examples = "".join(f"    >>> {_call(name, a)}\n    {run(a)!r}\n" for a in shown)
    prompt = f'\n\ndef {name}({signature}) -> {fam.returns}:\n    """{doc}\n{examples}    """\n'
    asserts = "".join(f"    assert candidate({', '.join(repr(a) for a in args)}) == {run(args)!r}\n" for args in shown + rest)
    test = f"\n\nMETADATA = {{'source': 'codeloop-selftrain', 'family': {family_name!r}}}\n\n\ndef check(candidate):\n{asserts}"
    return FunctionTask(f"fn-{family_name}-{serial}", family_name, name, prompt, test, body)


def _cycle(rng: random.Random, names: list[str]) -> Iterator[str]:
    names = sorted(names)
    while True:
        rng.shuffle(names)
        yield from names


def generate_function_tasks(
    count: int, seed: int = 0, families: Sequence[str] | None = None, hidden: int = 6
) -> list[FunctionTask]:
    """``count`` distinct function tasks, families taken in turn (shuffled per round), reproducible by ``seed``."""
    if count < 1:
        raise ValueError("count must be at least 1")
    chosen = list(families) if families else list(FUNCTION_FAMILIES)
    unknown = [f for f in chosen if f not in _FAMILIES]
    if unknown:
        raise ValueError(f"unknown function families: {', '.join(unknown)} (known: {', '.join(FUNCTION_FAMILIES)})")
    rng = random.Random(seed)
    order = _cycle(random.Random(seed + 1), chosen)
    tasks: list[FunctionTask] = []
    seen: set[str] = set()
    attempts = 0
    while len(tasks) < count:
        attempts += 1
        if attempts > count * 50:
            raise ValueError(f"could not draw {count} distinct function tasks from {len(chosen)} families")
        task = _draw(next(order), rng, len(tasks) + 1, hidden)
        if task.prompt in seen:
            continue
        seen.add(task.prompt)
        tasks.append(task)
    return tasks


def write_function_tasks(tasks: list[FunctionTask], path: Path) -> None:
    path.write_text("".join(json.dumps(t.to_dict()) + "\n" for t in tasks), encoding="utf-8")


def read_function_tasks(path: Path) -> list[FunctionTask]:
    tasks = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            tasks.append(FunctionTask(**json.loads(line)))
        except (json.JSONDecodeError, TypeError) as e:
            raise ValueError(f"{path}:{n}: not a function task record: {e}") from e
    return tasks
