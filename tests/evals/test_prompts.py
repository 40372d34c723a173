"""Prompts and turning replies into completions: ChatML prefill, chat blocks, demo code removal."""

from __future__ import annotations

from codeloop.evals.problems import Problem
from codeloop.evals.prompts import Conversation, PromptStyle, extract_block, sanitize


def test_chatml_prompt_prefills_the_function(problems: dict[str, Problem]) -> None:
    problem = problems["HumanEval/2"]
    text = Conversation.start(problem, PromptStyle.CHATML).chatml_prompt()
    assert text.startswith("<|im_start|>system\n")
    assert text.endswith("<|im_start|>assistant\n```python\n" + problem.prompt)
    assert text.count("<|im_start|>") == 3


def test_retry_keeps_only_the_latest_round(problems: dict[str, Problem]) -> None:
    problem = problems["HumanEval/2"]
    conv = Conversation.start(problem, PromptStyle.CHATML)
    conv.retry("    return 1\n", "first feedback")
    conv.retry("    return 2\n", "second feedback")
    roles = [role for role, _ in conv.turns]
    assert roles == ["user", "assistant", "user"]
    assert "return 2" in conv.turns[1][1] and "return 1" not in conv.chatml_prompt()
    assert "second feedback" in conv.turns[2][1] and "first feedback" not in conv.chatml_prompt()
    assert [m["role"] for m in conv.messages()] == ["system", "user", "assistant", "user"]


def test_chatml_reply_becomes_the_body(problems: dict[str, Problem]) -> None:
    problem = problems["HumanEval/2"]
    conv = Conversation.start(problem, PromptStyle.CHATML)
    reply = "    return number % 1.0\n\n\nprint(truncate_number(3.5))\nassert truncate_number(1.5) == 0.5\n```\nDone."
    completion = conv.completion_from_reply(reply)
    assert completion == "    return number % 1.0\n\n\n"
    namespace: dict[str, object] = {}
    exec(problem.prompt + completion, namespace)


def test_chat_reply_keeps_helpers_and_constants(problems: dict[str, Problem]) -> None:
    problem = problems["HumanEval/2"]
    conv = Conversation.start(problem, PromptStyle.CHAT)
    reply = (
        "Here you go:\n```python\nSCALE = 1.0\n\ndef helper(x):\n    return x % SCALE\n\n"
        "def truncate_number(number: float) -> float:\n    return helper(number)\n\n"
        "if __name__ == '__main__':\n    print(truncate_number(2.5))\n```\nIt works."
    )
    completion = conv.completion_from_reply(reply)
    assert "SCALE = 1.0" in completion and "def helper" in completion and "__main__" not in completion
    namespace: dict[str, object] = {}
    exec(problem.prompt + completion, namespace)
    assert namespace["truncate_number"](3.25) == 0.25  # type: ignore[operator]


def test_extract_block_variants() -> None:
    assert extract_block("a\n```python\nx = 1\n```\nb") == "x = 1"
    assert extract_block("```py\ny = 2\n") == "y = 2\n"
    assert extract_block("no fence") == "no fence"


def test_sanitize_leaves_broken_code_alone() -> None:
    broken = "def f(:\n    pass\nprint(1)\n"
    assert sanitize(broken, "f") == broken


def test_sanitize_drops_only_demo_statements() -> None:
    source = (
        "import math\nLIMIT = 3\ndef f(x):\n    return x\nresult = f(2)\nprint(result)\n"
        "for i in range(2):\n    f(i)\nassert f(1) == 1\nclass K:\n    pass\n"
    )
    assert sanitize(source, "f") == "import math\nLIMIT = 3\ndef f(x):\n    return x\nclass K:\n    pass\n"


def test_definitions_end_stops_at_demo_code_not_at_helpers() -> None:
    from codeloop.evals.prompts import definitions_end

    body = "    return helper(x)\n\n# A helper\ndef helper(y):\n    return y\n\nLIMIT = 3\nimport math\n"
    assert definitions_end(body) is None
    assert definitions_end(body + "# Test\nprint(f(1))\n") == len(body + "# Test\n")
    assert definitions_end(body + "assert f(1) == 1\n") == len(body)
    assert definitions_end(body + 'if __name__ == "__main__":\n') == len(body)
    assert definitions_end(body + "print(f(1)") is None  # incomplete line: not decided yet
    assert definitions_end("    return 1\nresult = f(2)\n") == len("    return 1\n")
    assert definitions_end("    return 1\nLIMIT == 3\n") == len("    return 1\n")


def test_missing_standard_imports_are_appended(problems) -> None:
    from codeloop.engine.imports import missing_imports

    assert missing_imports("def f(t):\n    return hashlib.md5(t).hexdigest()\n") == ["import hashlib"]
    assert missing_imports("def f(n):\n    return factorial(n) + len(Counter('ab'))\n") == [
        "from collections import Counter",
        "from math import factorial",
    ]
    # bound anywhere, a builtin, an unknown name, or not parsing: nothing to add
    assert missing_imports("import math as m\ndef f(x, math=1):\n    return m.sqrt(x) + math\n") == []
    assert missing_imports("def f(x):\n    return undefined_thing(x) + len(x)\n") == []
    assert missing_imports("def f(:\n    hashlib\n") == []
    problem = problems["HumanEval/162"]
    conv = Conversation.start(problem, PromptStyle.CHATML)
    completion = conv.completion_from_reply("    return hashlib.md5(text.encode()).hexdigest() if text else None\n```")
    assert completion.endswith("\n\nimport hashlib\n")
    namespace: dict[str, object] = {}
    exec(problem.prompt + completion, namespace)
    assert namespace["string_to_md5"]("Hello world") == "3e25960a79dbc69b674cd4ec67a72c62"


def test_instruct_style_prefills_evalplus_reply_prefix_and_takes_the_script(problems) -> None:
    problem = problems["HumanEval/2"]
    conv = Conversation.start(problem, PromptStyle.INSTRUCT)
    prompt = conv.chatml_prompt()
    assert "self-contained Python script" in prompt and problem.prompt.strip() in prompt
    assert prompt.endswith("passes corresponding tests:\n```python\n")
    reply = "def truncate_number(number: float) -> float:\n    return number % 1.0\n\nprint(truncate_number(3.5))\n```\nDone."
    completion = conv.completion_from_reply(reply)
    assert completion == "\ndef truncate_number(number: float) -> float:\n    return number % 1.0\n"
    conv.retry(completion, "It failed.")
    assert conv.turns[1][1].startswith("Below is a Python script") and "return number % 1.0\n```" in conv.turns[1][1]
