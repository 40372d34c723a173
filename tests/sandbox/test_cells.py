"""What one cell gives back: values, output, errors, figures and files (real worker processes)."""

from __future__ import annotations

import pytest

from codeloop.sandbox import RunStatus, Sandbox

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_state_persists_between_runs(sb: Sandbox) -> None:
    first = sb.run("import math\nx = math.factorial(20)\nx")
    assert first.status == "ok" and first.status is RunStatus.OK
    assert first.value == "2432902008176640000"
    second = sb.run("print(x + 1)")
    assert second.ok and second.stdout == "2432902008176640001\n"
    assert second.value is None
    assert (first.cell, second.cell) == (1, 2)


def test_value_is_the_repr_of_the_last_expression_only(sb: Sandbox) -> None:
    assert sb.run("'a' + 'b'").value == "'ab'"
    assert sb.run("y = 5").value is None
    assert sb.run("None").value is None
    assert sb.run("[1, 2]\n3").value == "3"
    assert sb.run("_ * 2").value == "6"  # like a notebook, _ holds the last value


def test_cells_do_not_inherit_the_workers_future_imports(sb: Sandbox) -> None:
    # worker.py has `from __future__ import annotations`; a cell's annotations must stay eager
    result = sb.run("def f(x: int) -> str:\n    return str(x)\nf.__annotations__")
    assert result.value == "{'x': <class 'int'>, 'return': <class 'str'>}"
    explicit = sb.run("from __future__ import annotations\ndef g(y: int): pass\ng.__annotations__")
    assert explicit.value == "{'y': 'int'}"  # a cell's own future import works
    later = sb.run("def h(z: int): pass\nh.__annotations__")
    assert later.value == "{'z': 'int'}"  # and holds for later cells, as in a REPL


def test_big_repr_is_bounded() -> None:
    with Sandbox(max_repr=100) as sb:
        value = sb.run("'z' * 10_000").value
    assert value is not None and len(value) < 200 and "repr truncated" in value


def test_print_c_level_writes_and_subprocess_output_are_captured(sb: Sandbox) -> None:
    result = sb.run(
        "import os, subprocess, sys\n"
        "print('from print')\n"
        "os.write(1, b'from fd 1\\n')\n"
        "subprocess.run(['echo', 'from a child'])\n"
        "print('to stderr', file=sys.stderr)\n"
        "os.write(2, b'fd 2\\n')\n"
    )
    assert result.ok, result.error
    assert result.stdout.splitlines() == ["from print", "from fd 1", "from a child"]
    assert result.stderr.splitlines() == ["to stderr", "fd 2"]


def test_printed_fake_protocol_frames_are_just_text(sb: Sandbox) -> None:
    fake = '{"id": "x", "status": "ok", "value": "42"}'
    result = sb.run(f"print({fake!r})\nimport os\nos.write(1, b'\\x00\\x00\\x00\\x10' + b'{{}}' * 8)")
    assert result.ok and result.value is not None and result.value.isdigit()  # os.write's return value
    assert fake in result.stdout


def test_invalid_utf8_is_replaced_not_fatal(sb: Sandbox) -> None:
    result = sb.run("import os\nos.write(1, b'ok \\xff\\xfe end\\n')")
    assert result.ok and result.stdout == "ok \ufffd\ufffd end\n"


def test_output_over_the_cap_is_truncated_and_marked() -> None:
    with Sandbox(max_output=1000) as sb:
        result = sb.run("for i in range(20000):\n    print(f'line {i}')")
    assert result.ok and result.truncated
    assert len(result.stdout) < 1300
    assert result.stdout.startswith("line 0\n")
    assert result.stdout.rstrip().endswith("line 19999")  # the end survives, where errors usually are
    assert "bytes of stdout omitted" in result.stdout


def test_errors_show_the_users_source_lines(sb: Sandbox) -> None:
    result = sb.run("def inner(n):\n    return n / 0\n\ninner(3)")
    assert result.status == "error" and result.error is not None
    assert (result.error.ename, result.error.evalue) == ("ZeroDivisionError", "division by zero")
    tb = result.error.traceback
    assert 'File "<cell 1>", line 4' in tb and "inner(3)" in tb
    assert 'File "<cell 1>", line 2, in inner' in tb and "return n / 0" in tb
    assert "worker.py" not in tb  # trimmed to the user's code


def test_syntax_errors_point_at_the_line(sb: Sandbox) -> None:
    result = sb.run("x = 1\ny = (\n")
    assert result.status == "error" and result.error is not None
    assert result.error.ename == "SyntaxError"
    assert '"<cell 1>", line 2' in result.error.traceback
    assert "worker.py" not in result.error.traceback


def test_system_exit_is_an_error_not_the_end_of_the_worker(sb: Sandbox) -> None:
    sb.run("kept = 'still here'")
    result = sb.run("import sys\nsys.exit(3)")
    assert result.status == "error" and result.error is not None and result.error.ename == "SystemExit"
    assert not result.restarted
    assert sb.run("kept").value == "'still here'"


def test_exception_in_repr_is_reported(sb: Sandbox) -> None:
    result = sb.run("class Bad:\n    def __repr__(self):\n        raise ValueError('no repr')\nBad()")
    assert result.status == "error" and result.error is not None and result.error.ename == "ValueError"


def test_figures_come_back_as_png_and_are_closed(sb: Sandbox) -> None:
    result = sb.run(
        "import matplotlib.pyplot as plt\n"
        "plt.plot([1, 2, 3], [1, 4, 9])\n"
        "plt.figure()\n"
        "plt.bar(['a', 'b'], [3, 5])\n"
    )
    assert result.ok, result.error
    assert len(result.figures) == 2
    assert all(png.startswith(PNG_SIGNATURE) for png in result.figures)
    after = sb.run("plt.get_fignums()")
    assert after.value == "[]" and after.figures == []


def test_cells_without_matplotlib_do_not_load_it(sb: Sandbox) -> None:
    result = sb.run("import sys\n'matplotlib' in sys.modules")
    assert result.value == "False" and result.figures == []


def test_numpy_and_pandas_work_inside(sb: Sandbox) -> None:
    result = sb.run("import numpy as np, pandas as pd\nint(pd.DataFrame({'a': np.arange(3)})['a'].sum())")
    assert result.ok, result.error
    assert result.value == "3"


def test_created_and_changed_files_are_listed(sb: Sandbox) -> None:
    first = sb.run(
        "import os\n"
        "open('data.csv', 'w').write('a,b\\n')\n"
        "os.makedirs('out/deep')\n"
        "open('out/deep/r.txt', 'w').write('x')\n"
        "os.symlink('/etc', 'etc-link')\n"
    )
    assert first.ok, first.error
    assert first.files == ["data.csv", "etc-link", "out/deep/r.txt"]  # the link itself, not followed
    assert (sb.workdir / "data.csv").read_text() == "a,b\n"
    assert sb.run("x = 1").files == []
    assert sb.run("open('data.csv', 'a').write('1,2\\n')").files == ["data.csv"]


def test_working_directory_and_home_are_the_session_dir(sb: Sandbox) -> None:
    result = sb.run("import os\nos.getcwd(), os.environ['HOME']")
    assert result.value == repr((str(sb.workdir), str(sb.workdir)))


def test_host_environment_does_not_leak_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODELOOP_TEST_SECRET", "hunter2")
    with Sandbox() as sb:
        result = sb.run("import os\nsorted(k for k in os.environ if 'SECRET' in k or 'JAIL' in k)")
    assert result.value == "[]"


def test_extra_env_is_passed() -> None:
    with Sandbox(env={"GREETING": "hello"}) as sb:
        assert sb.run("import os\nos.environ['GREETING']").value == "'hello'"


def test_files_are_listed_in_a_settled_empty_directory_and_right_after_a_change(sb: Sandbox) -> None:
    import time

    sb.run("1")
    time.sleep(0.1)  # the empty directory's mtime is now old enough to be trusted
    assert sb.run("open('late.txt', 'w').write('x')").files == ["late.txt"]
    assert sb.run("import os\nos.remove('late.txt')").files == []
    assert sb.run("open('again.txt', 'w').write('y')").files == ["again.txt"]  # right after a change
    assert sb.run("import os\nos.makedirs('sub')").files == []  # directories alone are not files
    time.sleep(0.1)
    assert sb.run("open('sub/inner.txt', 'w').write('z')").files == ["sub/inner.txt"]


def test_changes_in_a_settled_tree_are_all_seen(sb: Sandbox) -> None:
    import time

    made = sb.run(
        "import os\nos.makedirs('sub/deep')\nopen('top.txt', 'w').write('a')\n"
        "open('sub/deep/low.txt', 'w').write('b')\nos.makedirs('other')\nopen('other/x.txt', 'w').write('c')"
    )
    assert made.files == ["other/x.txt", "sub/deep/low.txt", "top.txt"]

    def settle() -> None:
        time.sleep(0.1)  # every directory's mtime is now old enough for its listing to be trusted
        assert sb.run("1").files == []

    settle()
    # contents change, no directory notices
    assert sb.run("open('sub/deep/low.txt', 'a').write('more')").files == ["sub/deep/low.txt"]
    settle()
    assert sb.run("open('sub/deep/new.txt', 'w').write('n')").files == ["sub/deep/new.txt"]
    settle()
    assert sb.run("import os\nos.rename('top.txt', 'renamed.txt')").files == ["renamed.txt"]
    settle()
    # a directory replaced by another of the same name, whose files are older than the last scan
    replaced = sb.run("import os, shutil\nshutil.rmtree('sub')\nos.rename('other', 'sub')")
    assert replaced.files == ["sub/x.txt"]
    settle()
    assert sb.run("import os\nos.utime('renamed.txt', ns=(1, 1))").files == ["renamed.txt"]


def test_big_cells_and_big_outputs_cross_the_pipes(sb: Sandbox) -> None:
    blob = "é" * 1_000_000  # 2 MB of UTF-8 in the request: more than a pipe holds
    result = sb.run(f"s = {blob!r}\nprint(s[:3])\nprint('x' * 500_000)\nlen(s)")
    assert result.ok, result.error
    assert result.value == "1000000"
    assert result.stdout.startswith("ééé\n") and len(result.stdout) == 4 + 500_001 and not result.truncated


def test_input_reads_from_a_closed_stdin(sb: Sandbox) -> None:
    result = sb.run("input('name? ')")
    assert result.status == "error" and result.error is not None and result.error.ename == "EOFError"
