"""Worked examples, and which one to show for a task.

A 0.5B model copies the worked example in front of it: shown `n ** 2` for "the sum of the
squares", it writes `int(d) ** 100` for "the sum of the digits of 2 ** 100". So instead of one
fixed example for every task, the loop keeps a small library of solved tasks, one per common
skill (primes, digits, dates, strings, lists, data frames, ...), and shows the one whose skill
keywords the task shares (rarer words weigh more; no model call); a task that shares none gets
the general arithmetic example. The repair example (an error, then the fix) is always shown.

The library's tasks are not taken from the benchmark sets (``bench/``): they teach a skill
(build the DataFrame from the columns given, reduce to one value, search upwards with a
helper), not an answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LIBRARY", "REPAIR", "WorkedExample", "select"]


@dataclass(frozen=True)
class WorkedExample:
    """A solved task: the task, then (reply, output or error, failed?) exchanges, the answer."""

    task: str
    exchanges: tuple[tuple[str, str, bool], ...]
    answer: str
    keywords: str = ""  # words a task on the same skill tends to use: what it is matched on


def _code(source: str) -> str:
    return f"```python\n{source.strip()}\n```"


def _solved(task: str, code: str, output: str, answer: str, keywords: str = "") -> WorkedExample:
    return WorkedExample(task, ((_code(code), output, False),), answer, keywords)


# The general example, for tasks no skill example matches.
GENERAL = _solved(
    "What is the sum of the squares of 3, 4 and 12?",
    "numbers = [3, 4, 12]\nresult = sum(n ** 2 for n in numbers)\nprint(result)",
    "169",
    "The sum of the squares of 3, 4 and 12 is 169.",
)

# An error and its repair: shown with every task, so the model sees what to do after a failure.
REPAIR = WorkedExample(
    "Join the integers from 1 to 5 with dashes.",
    (
        (
            _code("result = '-'.join(range(1, 6))\nprint(result)"),
            'Traceback (most recent call last):\n  File "<cell 2>", line 1, in <module>\n'
            "    result = '-'.join(range(1, 6))\n"
            "TypeError: sequence item 0: expected str instance, int found",
            True,
        ),
        (_code("result = '-'.join(str(n) for n in range(1, 6))\nprint(result)"), "1-2-3-4-5", False),
    ),
    "The integers from 1 to 5 joined with dashes are 1-2-3-4-5.",
)

LIBRARY: tuple[WorkedExample, ...] = (
    GENERAL,
    _solved(
        "What is the largest prime number below 1000?",
        """
def is_prime(n):
    if n < 2:
        return False
    for d in range(2, int(n ** 0.5) + 1):
        if n % d == 0:
            return False
    return True

n = 999
while not is_prime(n):
    n -= 1
print(n)
""",
        "997",
        "The largest prime number below 1000 is 997.",
        "prime primes primality composite",
    ),
    _solved(
        "How many divisors of 100 are odd?",
        """
divisors = [d for d in range(1, 101) if 100 % d == 0]
odd = [d for d in divisors if d % 2 == 1]
print(len(odd))
""",
        "3",
        "3 divisors of 100 are odd.",
        "divisor divisors factor factors divides divisible",
    ),
    _solved(
        "What is the greatest common divisor of 84, 126 and 210?",
        "import math\n\nresult = math.gcd(84, 126, 210)\nprint(result)",
        "42",
        "The greatest common divisor of 84, 126 and 210 is 42.",
        "gcd lcm greatest least common divisor multiple",
    ),
    _solved(
        "How many of the digits of 2 to the power of 50 are even?",
        """
digits = [int(c) for c in str(2 ** 50)]
result = sum(1 for d in digits if d % 2 == 0)
print(result)
""",
        "10",
        "10 of the digits of 2 to the power of 50 are even.",
        "digit digits",
    ),
    _solved(
        "What is the first power of 3 that is greater than 1000?",
        """
n = 1
while 3 ** n <= 1000:
    n += 1
print(3 ** n)
""",
        "2187",
        "The first power of 3 greater than 1000 is 2187.",
        "power powers exponent exceeds",
    ),
    _solved(
        "In how many ways can 3 books be chosen from 10?",
        "import math\n\nresult = math.comb(10, 3)\nprint(result)",
        "120",
        "3 books can be chosen from 10 in 120 ways.",
        "ways choose chosen combinations permutations factorial arrangements",
    ),
    _solved(
        "How many times does the letter 'o' appear in 'chocolate cookies'?",
        "text = 'chocolate cookies'\nresult = text.count('o')\nprint(result)",
        "4",
        "The letter 'o' appears 4 times in 'chocolate cookies'.",
        "letter letters character characters vowel vowels consonant consonants occur count",
    ),
    _solved(
        "Write the word 'python' backwards in upper case.",
        "word = 'python'\nresult = word[::-1].upper()\nprint(result)",
        "NOHTYP",
        "'python' backwards in upper case is NOHTYP.",
        "reverse reversed backwards upper lower case title capitalize replace string word sentence",
    ),
    _solved(
        "How many days passed between 2020-03-01 and 2020-12-25?",
        """
from datetime import date

start = date(2020, 3, 1)
end = date(2020, 12, 25)
print((end - start).days)
""",
        "299",
        "299 days passed between 2020-03-01 and 2020-12-25.",
        "days between date dates since until old",
    ),
    _solved(
        "How many Mondays were there in February 2024?",
        """
from datetime import date, timedelta

day = date(2024, 2, 1)
count = 0
while day.month == 2:
    if day.weekday() == 0:  # Monday is 0, Sunday is 6
        count += 1
    day += timedelta(days=1)
print(count)
""",
        "4",
        "There were 4 Mondays in February 2024.",
        "monday tuesday wednesday thursday friday saturday sunday weekday weekdays week month calendar",
    ),
    _solved(
        "What date is 45 days before 2024-03-10? Answer in the format YYYY-MM-DD.",
        """
from datetime import date, timedelta

result = date(2024, 3, 10) - timedelta(days=45)
print(result.isoformat())
""",
        "2024-01-25",
        "2024-01-25",
        "date after before later earlier yyyy",
    ),
    _solved(
        "What is the mean of the list [2, 7, 9, 14]?",
        "import statistics\n\nnumbers = [2, 7, 9, 14]\nprint(statistics.mean(numbers))",
        "8",
        "The mean of the list is 8.",
        "list mean average median mode variance deviation statistics",
    ),
    _solved(
        "What is the difference between the largest and the smallest number in [7, 2, 9, 4]?",
        "numbers = [7, 2, 9, 4]\nresult = max(numbers) - min(numbers)\nprint(result)",
        "7",
        "The difference between the largest and the smallest number is 7.",
        "list largest smallest maximum minimum sorted sort second",
    ),
    _solved(
        "A table has columns item=['tea', 'cake', 'tea'], price=[2.5, 4.0, 2.5] and count=[4, 1, 2]. "
        "How much was spent on tea in total?",
        """
import pandas as pd

df = pd.DataFrame({'item': ['tea', 'cake', 'tea'], 'price': [2.5, 4.0, 2.5], 'count': [4, 1, 2]})
tea = df[df['item'] == 'tea']
result = (tea['price'] * tea['count']).sum()
print(result)
""",
        "15.0",
        "15.0 was spent on tea in total.",
        "pandas dataframe table column columns row rows total",
    ),
    _solved(
        "Using pandas, with columns shop=['a', 'b', 'a', 'c'] and sales=[5, 9, 7, 3], "
        "which shop sold the most in total?",
        """
import pandas as pd

df = pd.DataFrame({'shop': ['a', 'b', 'a', 'c'], 'sales': [5, 9, 7, 3]})
totals = df.groupby('shop')['sales'].sum()
print(totals.idxmax())
""",
        "a",
        "Shop a sold the most in total.",
        "pandas dataframe table column columns group highest most",
    ),
)

_STOP = frozenset(
    "a an and are as at be by for from how in is it its of on or the that this to was were what "
    "which with many much do does did there their your you i me my answer".split()
)


def _words(text: str) -> set[str]:
    words = set()
    for w in re.findall(r"[a-z]+", text.lower()):
        if w in _STOP or len(w) < 2:
            continue
        words.add(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w)
    return words


def _vocab(example: WorkedExample) -> set[str]:
    # The keywords only: the example's own nouns ('tea', 'shop') would match tasks by accident.
    return _words(example.keywords)


def _idf(library: Sequence[WorkedExample]) -> dict[str, float]:
    counts: dict[str, int] = {}
    for example in library:
        for w in _vocab(example):
            counts[w] = counts.get(w, 0) + 1
    return {w: math.log(1 + len(library) / c) for w, c in counts.items()}


_VOCABS = [_vocab(e) for e in LIBRARY]
_IDF = _idf(LIBRARY)


def select(task: str, k: int = 1) -> list[WorkedExample]:
    """The ``k`` library examples closest to ``task``, best last; the general one if none is close."""
    words = _words(task)
    scored = [(sum(_IDF[w] for w in words & vocab), -i) for i, vocab in enumerate(_VOCABS)]
    best = sorted((s for s in scored if s[0] > 0), reverse=True)[:k]
    chosen = [LIBRARY[-i] for _, i in best] or [GENERAL]
    return chosen[::-1]
