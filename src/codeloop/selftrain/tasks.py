"""Training tasks with answers computed here, never taken from a benchmark.

Each family draws its numbers, words and dates from a seeded RNG and computes the answer with
plain Python, so a program the model writes can be *verified* by running it and comparing its
output to the answer. The phrasings are written for self-training and are checked (by a test)
never to repeat a task of ``bench/tasks``, ``bench/heldout`` or ``bench/fresh``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import statistics
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["FAMILIES", "Task", "generate_tasks", "read_tasks", "write_tasks"]


@dataclass(frozen=True)
class Task:
    """One task: its text, the computed answer and how to compare (``number``/``text``/``bool``/``list``)."""

    id: str
    family: str
    task: str
    answer: Any
    check: str = "number"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Maker = Callable[[random.Random], tuple[str, Any, str]]

_WORDS = (
    "lighthouse", "parliament", "cucumber", "wanderlust", "kaleidoscope", "trombone", "meadowlark",
    "quarantine", "zeppelin", "honeysuckle", "bureaucracy", "marmalade", "silhouette", "xylophone",
    "juxtaposition", "rhubarb", "labyrinth", "saxophone", "chrysanthemum", "avalanche",
)
_NAMES = ("Ada", "Bruno", "Chioma", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas")
_CITIES = ("Lagos", "Oslo", "Quito", "Perth", "Hanoi", "Turin")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))


def _divisor_sum(rng: random.Random) -> tuple[str, Any, str]:
    n = rng.randint(60, 5000)
    return f"Find the sum of all positive divisors of {n}, including 1 and {n} itself.", sum(
        d for d in range(1, n + 1) if n % d == 0
    ), "number"


def _primes_between(rng: random.Random) -> tuple[str, Any, str]:
    a = rng.randint(100, 3000)
    b = a + rng.randint(200, 3000)
    return f"How many primes p satisfy {a} <= p <= {b}?", sum(_is_prime(k) for k in range(a, b + 1)), "number"


def _digit_sum_power(rng: random.Random) -> tuple[str, Any, str]:
    base, exp = rng.randint(3, 19), rng.randint(20, 90)
    return f"Add up the decimal digits of {base}**{exp}. What total do you get?", sum(
        int(c) for c in str(base**exp)
    ), "number"


def _multiples(rng: random.Random) -> tuple[str, Any, str]:
    x, y = rng.sample(range(3, 14), 2)
    n = rng.randint(200, 20000)
    total = sum(k for k in range(1, n) if k % x == 0 or k % y == 0)
    return f"Compute the sum of every positive integer smaller than {n} that is a multiple of {x} or of {y}.", total, "number"


def _gcd3(rng: random.Random) -> tuple[str, Any, str]:
    g = rng.randint(2, 40)
    nums = [g * rng.randint(5, 300) for _ in range(3)]
    return f"Give the greatest common divisor of {nums[0]}, {nums[1]} and {nums[2]}.", math.gcd(*nums), "number"


def _collatz_steps(rng: random.Random) -> tuple[str, Any, str]:
    n, start, steps = rng.randint(20, 3000), 0, 0
    start = n
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return (
        f"Starting from {start}, repeatedly halve the number when it is even or replace it by 3n+1 when it "
        "is odd. How many steps does it take to reach 1?",
        steps,
        "number",
    )


def _vowels(rng: random.Random) -> tuple[str, Any, str]:
    words = rng.sample(_WORDS, 3)
    text = " ".join(words)
    return f"Count the vowels (a, e, i, o, u) in the phrase '{text}'.", sum(c in "aeiou" for c in text), "number"


def _distinct_letters(rng: random.Random) -> tuple[str, Any, str]:
    word = rng.choice(_WORDS)
    return f"How many different letters appear in the word '{word}'?", len(set(word)), "number"


def _reverse_word(rng: random.Random) -> tuple[str, Any, str]:
    word = rng.choice(_WORDS)
    return f"Spell the word '{word}' backwards.", word[::-1], "text"


def _palindrome(rng: random.Random) -> tuple[str, Any, str]:
    n = rng.randint(1000, 999999)
    if rng.random() < 0.5:
        s = str(n)
        n = int(s + s[::-1])
    return f"Is the number {n} a palindrome (the same read forwards and backwards)? Answer True or False.", str(
        n
    ) == str(n)[::-1], "bool"


def _date_gap(rng: random.Random) -> tuple[str, Any, str]:
    a = dt.date(rng.randint(1990, 2030), rng.randint(1, 12), rng.randint(1, 28))
    b = a + dt.timedelta(days=rng.randint(30, 4000))
    return f"How many days are there from {a.isoformat()} to {b.isoformat()}?", (b - a).days, "number"


def _weekday(rng: random.Random) -> tuple[str, Any, str]:
    d = dt.date(rng.randint(1950, 2060), rng.randint(1, 12), rng.randint(1, 28))
    return f"On which day of the week did or will {d.strftime('%d %B %Y')} fall?", _WEEKDAYS[d.weekday()], "text"


def _add_days(rng: random.Random) -> tuple[str, Any, str]:
    d = dt.date(rng.randint(2000, 2040), rng.randint(1, 12), rng.randint(1, 28))
    k = rng.randint(10, 900)
    return f"What date is {k} days after {d.isoformat()}? Answer in the format YYYY-MM-DD.", (
        d + dt.timedelta(days=k)
    ).isoformat(), "text"


def _list_stats(rng: random.Random) -> tuple[str, Any, str]:
    values = [rng.randint(-50, 200) for _ in range(rng.randint(7, 12))]
    kind = rng.choice(("median", "range", "mean"))
    if kind == "median":
        answer: Any = statistics.median(values)
        text = f"What is the median of these numbers: {values}?"
    elif kind == "range":
        answer = max(values) - min(values)
        text = f"What is the difference between the largest and the smallest of {values}?"
    else:
        answer = round(statistics.mean(values), 2)
        text = f"What is the average of {values}, rounded to 2 decimal places?"
    return text, answer, "number"


def _second_largest(rng: random.Random) -> tuple[str, Any, str]:
    values = rng.sample(range(-100, 1000), rng.randint(6, 10))
    return f"Which number is the second largest in {values}?", sorted(values)[-2], "number"


def _pandas_group(rng: random.Random) -> tuple[str, Any, str]:
    rows = [(rng.choice(_CITIES[:3]), rng.choice(_NAMES[:4]), rng.randint(1, 90)) for _ in range(8)]
    city = rows[0][0]
    total = sum(r[2] for r in rows if r[0] == city)
    table = "; ".join(f"city={c}, seller={s}, units={u}" for c, s, u in rows)
    return (
        f"Put these rows in a pandas DataFrame: {table}. What is the total number of units sold in {city}?",
        total,
        "number",
    )


def _pandas_mean_filter(rng: random.Random) -> tuple[str, Any, str]:
    rows = [(rng.choice(_NAMES), rng.randint(18, 70), rng.randint(20, 120) * 1000) for _ in range(7)]
    age = rng.randint(30, 50)
    chosen = [r[2] for r in rows if r[1] > age] or [rows[0][2]]
    if not any(r[1] > age for r in rows):
        age = rows[0][1] - 1
        chosen = [r[2] for r in rows if r[1] > age]
    table = "; ".join(f"name={n}, age={a}, salary={s}" for n, a, s in rows)
    return (
        f"With pandas, load the people {table}. What is the mean salary of the people older than {age}? "
        "Round to 2 decimal places.",
        round(statistics.mean(chosen), 2),
        "number",
    )


FAMILIES: dict[str, Maker] = {
    "divisor-sum": _divisor_sum,
    "primes-between": _primes_between,
    "digit-sum-power": _digit_sum_power,
    "multiples": _multiples,
    "gcd3": _gcd3,
    "collatz": _collatz_steps,
    "vowels": _vowels,
    "distinct-letters": _distinct_letters,
    "reverse-word": _reverse_word,
    "palindrome": _palindrome,
    "date-gap": _date_gap,
    "weekday": _weekday,
    "add-days": _add_days,
    "list-stats": _list_stats,
    "second-largest": _second_largest,
    "pandas-group": _pandas_group,
    "pandas-mean-filter": _pandas_mean_filter,
}


def _cycle(rng: random.Random) -> Iterator[str]:
    names = sorted(FAMILIES)
    while True:
        rng.shuffle(names)
        yield from names


def generate_tasks(count: int, seed: int = 0, families: list[str] | None = None) -> list[Task]:
    """``count`` distinct tasks, families taken in turn (shuffled per round), reproducible by ``seed``."""
    if count < 1:
        raise ValueError("count must be at least 1")
    chosen = families or sorted(FAMILIES)
    unknown = [f for f in chosen if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown task families: {', '.join(unknown)} (known: {', '.join(sorted(FAMILIES))})")
    rng = random.Random(seed)
    order = _cycle(random.Random(seed + 1)) if families is None else iter(lambda: rng.choice(chosen), None)
    tasks: list[Task] = []
    seen: set[str] = set()
    attempts = 0
    while len(tasks) < count:
        attempts += 1
        if attempts > count * 50:
            raise ValueError(f"could not draw {count} distinct tasks from {len(chosen)} families")
        family = next(order)
        text, answer, check = FAMILIES[family](rng)
        if text in seen:
            continue
        seen.add(text)
        tasks.append(Task(f"st-{family}-{len(tasks) + 1}", family, text, answer, check))
    return tasks


def write_tasks(tasks: list[Task], path: Path) -> None:
    path.write_text("".join(json.dumps(t.to_dict()) + "\n" for t in tasks), encoding="utf-8")


def read_tasks(path: Path) -> list[Task]:
    tasks = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            tasks.append(Task(**json.loads(line)))
        except (json.JSONDecodeError, TypeError) as e:
            raise ValueError(f"{path}:{n}: not a task record: {e}") from e
    return tasks
