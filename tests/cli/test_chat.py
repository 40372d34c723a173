"""``codeloop chat`` driven for real: piped stdin (non-TTY mode) and a pseudo-terminal (interactive).

The model is the scripted OpenAI-compatible server of test_run.py on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import test_run
from test_run import codeloop, fence

from local_servers import ScriptedOpenAIServer

# The same fixtures as test_run.py: an isolated user dir, a scripted model server.
codeloop_home = test_run.codeloop_home
scripted = test_run.scripted


def chat(server: ScriptedOpenAIServer, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codeloop", "chat", "--model", "scripted", "--base-url", server.base_url, *args],
        input=stdin, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_piped_turns_share_one_sandbox_and_one_history_entry(scripted: ScriptedOpenAIServer) -> None:
    scripted.replies = [fence("x = 20 + 1\nprint(x)"), "x is 21.", fence("print(x * 2)"), "Twice x is 42."]
    done = chat(scripted, "set x to 21\ndouble x\n")
    assert done.returncode == 0, done.stderr
    assert "Answer: x is 21." in done.stdout
    assert "Answer: Twice x is 42." in done.stdout
    assert "\033[" not in done.stdout and "you>" not in done.stdout  # plain output without a terminal
    # The second turn saw the first one.
    contents = [m["content"] for m in scripted.requests[2]["messages"]]
    assert "set x to 21" in contents
    assert "x is 21." in contents
    stored = json.loads(codeloop("history", "show", "1", "--json").stdout)
    assert stored["kind"] == "chat"
    assert [t["task"] for t in stored["turns"]] == ["set x to 21", "double x"]


def test_commands(scripted: ScriptedOpenAIServer, tmp_path: Path) -> None:
    scripted.replies = [fence("y = 2 + 3\nprint(y)"), "y is 5.", fence("print(y)"), "It is 5 again."]
    nb_path = tmp_path / "chat.ipynb"
    script = "\n".join(
        ["/help", "/model", "compute y", "/save my numbers", f"/export {nb_path}", "/history", "/bogus",
         "/reset", "print y", "/quit", "never read"]
    )  # fmt: skip
    done = chat(scripted, script + "\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "/reset" in out and "/export [PATH]" in out  # the help text
    assert re.search(r"model: \S*scripted", out)
    assert "stored as chat 1: codeloop chat --resume 1" in out
    assert f"wrote {nb_path}" in out
    assert nbformat.read(nb_path, as_version=4).cells
    assert "my numbers" in out  # /history lists the renamed chat
    assert "unknown command /bogus" in out
    assert "new conversation" in out
    # After /reset the sandbox is fresh: y is gone, and the error went back to the model.
    assert "NameError" in out
    assert all("never read" not in m["content"] for r in scripted.requests for m in r["messages"])
    listing = codeloop("history", "list").stdout
    assert "my numbers" in listing
    assert "print y" in listing


def test_multi_line_messages(scripted: ScriptedOpenAIServer) -> None:
    scripted.replies = ["One.", "Two."]
    done = chat(scripted, '"""\nfirst line\nsecond line\n"""\ncontinued \\\nline\n', "--baseline")
    assert done.returncode == 0, done.stderr
    tasks = [r["messages"][-1]["content"] for r in scripted.requests]
    assert tasks == ["first line\nsecond line", "continued \nline"]


def test_resume_continues_a_stored_chat(scripted: ScriptedOpenAIServer) -> None:
    scripted.replies = [fence("z = 3 + 4\nprint(z)"), "z is 7."]
    assert chat(scripted, "set z to 7\n").returncode == 0
    scripted.replies = [fence("print(3 * 7)"), "Three z is 21."]
    done = chat(scripted, "what is 3 times z?\n", "--resume", "1")
    assert done.returncode == 0, done.stderr
    assert "resumed chat 1" in done.stdout
    assert "not restored" in done.stdout
    contents = [m["content"] for m in scripted.requests[-2]["messages"]]
    assert "set z to 7" in contents
    assert "z is 7." in contents
    stored = json.loads(codeloop("history", "show", "1", "--json").stdout)
    assert len(stored["turns"]) == 2
    missing = chat(scripted, "hi\n", "--resume", "99")
    assert missing.returncode == 1
    assert "no conversation with id 99" in missing.stderr


class Terminal:
    """A child process on a pseudo-terminal, read with a deadline."""

    def __init__(self, argv: list[str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            os.execv(sys.executable, [sys.executable, *argv])
        self.seen = ""
        self.pos = 0  # expect() looks only at output after its previous match

    def expect(self, pattern: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not (match := re.search(pattern, self.seen[self.pos :])):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{pattern!r} not seen; got: {self.seen[-2000:]!r}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    raise AssertionError(f"{pattern!r} not seen before exit; got: {self.seen[-2000:]!r}")
                text = data.decode(errors="replace")
                self.seen += text
                if "\x1b[6n" in text:  # prompt_toolkit asks where the cursor is: answer like a terminal
                    os.write(self.fd, b"\x1b[1;1R")
        self.pos += match.end()

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            try:
                if select.select([self.fd], [], [], 0.1)[0]:
                    self.seen += os.read(self.fd, 4096).decode(errors="replace")
            except OSError:
                time.sleep(0.1)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError(f"the chat did not exit; last output: {self.seen[-1000:]!r}")


def test_interactive_terminal_ctrl_c_interrupts_a_cell_without_leaving(scripted: ScriptedOpenAIServer) -> None:
    scripted.replies = [
        fence("import time\nprint('sleeping', flush=True)\ntime.sleep(60)"),
        fence("print(6 * 7)"),
        "It is 42.",
    ]
    term = Terminal(["-m", "codeloop", "chat", "--model", "scripted", "--base-url", scripted.base_url])
    term.expect("codeloop chat with \\S*scripted")
    term.expect("you>")
    term.send("sleep a minute\r")
    term.expect("sleeping")
    term.send("\x03")  # Ctrl-C, as the terminal delivers it
    term.expect(r"\(interrupted\)")
    term.expect("you>")
    term.send("six times seven\r")
    term.expect("It is 42.")
    assert "\x1b[" in term.seen  # colours on a terminal
    term.expect("you>")
    term.send("\x04")  # Ctrl-D leaves
    assert term.wait() == 0
