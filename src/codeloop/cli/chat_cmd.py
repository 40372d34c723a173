"""``codeloop chat``: an interactive session whose sandbox keeps its state across turns."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from codeloop.agent import Agent, AgentResult, Conversation, RunStatus, fan_out
from codeloop.agent.console import ConsolePrinter
from codeloop.cli.run_cmd import (
    add_loop_options,
    limits_from,
    load_model,
    open_history,
    sandbox_factory,
    strategy_from,
    warn,
)
from codeloop.config import user_dir
from codeloop.errors import CodeloopError, HistoryError

DESCRIPTION = (
    "Chat with the model; it writes and runs Python in one sandbox session whose variables persist "
    "across turns. Every turn is stored in the history. Multi-line input: end a line with '\\' to "
    'continue it, or put the text between two lines of """. On a terminal, Esc then Enter also inserts '
    "a new line. Ctrl-C stops the running cell or reply without leaving; Ctrl-D or /quit leaves. "
    "Without a terminal, lines are read from stdin."
)

HELP = """\
/help            this help
/reset           start a new conversation (fresh sandbox, new history entry)
/model [NAME]    show the model, or switch to NAME (the sandbox and the conversation stay)
/save [TITLE]    name this conversation in the history and show its id
/export [PATH]   write this conversation as a Jupyter notebook (default chat-ID.ipynb)
/history         list recent runs and chats
/quit            leave (also /exit or Ctrl-D)"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resume", type=int, default=None, metavar="ID", help="continue a stored chat (or run)"
    )
    add_loop_options(parser)


# -- reading input ----------------------------------------------------------------------------


def _line_reader(interactive: bool) -> Callable[[str], str]:
    """``read(prompt)`` returning one physical line; EOFError at the end, KeyboardInterrupt on Ctrl-C."""
    if not interactive:

        def read_piped(_prompt: str) -> str:
            line = sys.stdin.readline()
            if not line:
                raise EOFError
            return line.rstrip("\n")

        return read_piped
    history_file = user_dir() / "chat_input_history"
    try:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.formatted_text import ANSI
        from prompt_toolkit.history import FileHistory
        from prompt_toolkit.key_binding import KeyBindings
    except ImportError:
        try:
            import readline

            readline.parse_and_bind("tab: complete")
            try:
                readline.read_history_file(history_file)
            except OSError:
                pass
            import atexit

            atexit.register(readline.write_history_file, history_file)
        except ImportError:
            pass
        return input
    keys = KeyBindings()

    @keys.add("escape", "enter")
    def _newline(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    session: Any = PromptSession(history=FileHistory(str(history_file)), key_bindings=keys)
    return lambda prompt: str(session.prompt(ANSI(prompt)))


def read_messages(read: Callable[[str], str], prompt: str, more: str) -> Iterator[str]:
    """Whole messages: joins '\\'-continued lines and \"\"\"-delimited blocks; Ctrl-C drops the current one."""
    while True:
        try:
            first = read(prompt)
            if first.strip() == '"""':
                lines = []
                while (line := read(more)).strip() != '"""':
                    lines.append(line)
                yield "\n".join(lines)
                continue
            lines = [first]
            while lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1]
                lines.append(read(more))
            yield "\n".join(lines)
        except KeyboardInterrupt:
            print()
            continue
        except EOFError:
            return


# -- the session ------------------------------------------------------------------------------


class ChatSession:
    """The state of one ``codeloop chat``: model, agent, conversation, history entry."""

    def __init__(self, args: argparse.Namespace, printer: ConsolePrinter) -> None:
        self.args = args
        self.printer = printer
        self.model = load_model(args)
        self.history = open_history(args, warn)
        self.conversation_id: int | None = None
        limits = limits_from(args)
        self.agent = Agent(
            self.model, limits=limits, strategy=strategy_from(args), sandbox_factory=sandbox_factory(limits.cell_timeout)
        )
        self.chat = Conversation(self.agent)
        if args.resume is not None:
            self.resume(args.resume)

    def resume(self, conversation_id: int) -> None:
        if self.history is None:
            raise HistoryError("cannot resume: the history is off or could not be opened")
        stored = self.history.load(conversation_id)
        self.chat = Conversation(self.agent, stored.turns)
        self.conversation_id = stored.id
        print(f"resumed {stored.kind} {stored.id}: {stored.title} ({len(stored.turns)} turn(s))")
        print("note: the sandbox starts fresh; variables from the earlier session are not restored")

    def send(self, text: str) -> AgentResult:
        recorder = None
        if self.history is not None:
            from codeloop.store import Recorder

            try:
                if self.conversation_id is None:
                    self.conversation_id = self.history.new_conversation("chat", text, self.model.name)
                recorder = Recorder(self.history, self.conversation_id, on_error=lambda e: warn(str(e)))
                recorder.begin(text)
            except HistoryError as e:
                warn(f"this turn is not stored: {e}")
        self.agent.on_event = fan_out([recorder, self.printer])
        return self.chat.send(text)

    def command(self, line: str) -> bool:
        """Run a /command; return False when the chat should end."""
        name, _, arg = line.strip().partition(" ")
        arg = arg.strip()
        if name in ("/quit", "/exit"):
            return False
        if name == "/help":
            print(HELP)
        elif name == "/reset":
            self.chat.reset()
            self.conversation_id = None
            print("new conversation: the sandbox was reset")
        elif name == "/model":
            if arg:
                self.model = load_model(argparse.Namespace(model=arg, base_url=self.args.base_url))
                self.agent.model = self.model
                self.args.model = arg
            print(f"model: {self.model.name}")
        elif name == "/save":
            self.save(arg)
        elif name == "/export":
            self.export(arg)
        elif name == "/history":
            self.list_history()
        else:
            print(f"unknown command {name}: try /help")
        return True

    def save(self, title: str) -> None:
        if self.history is None or self.conversation_id is None:
            print("nothing stored yet: send a message first" if self.history else "the history is off")
            return
        if title:
            self.history.rename(self.conversation_id, title)
        print(f"stored as chat {self.conversation_id}: codeloop chat --resume {self.conversation_id}")

    def export(self, target: str) -> None:
        from codeloop.store import export_notebook

        if not self.chat.turns:
            print("nothing to export yet")
            return
        name = f"chat-{self.conversation_id}.ipynb" if self.conversation_id else "chat.ipynb"
        path = export_notebook(self.chat.turns, Path(target or name), title=self.chat.turns[0].task)
        print(f"wrote {path}")

    def list_history(self) -> None:
        if self.history is None:
            print("the history is off")
            return
        for r in self.history.list(10):
            print(f"{r.id:>5}  {r.kind:<4}  {r.turns:>2} turn(s)  {r.title}")

    def close(self) -> None:
        self.agent.close()
        if self.history is not None:
            self.history.close()


def run(args: argparse.Namespace) -> int:
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if interactive and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        # Started by something that ignores SIGINT (a background job, nohup): at a terminal the
        # user's Ctrl-C must still interrupt the running cell or generation.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    printer = ConsolePrinter(sys.stdout)
    session = ChatSession(args, printer)
    try:
        if interactive:
            print(f"codeloop chat with {session.model.name}: /help for commands, Ctrl-D to leave")
        prompt, more = (printer.style("you> ", "bold"), "...  ") if interactive else ("", "")
        for message in read_messages(_line_reader(interactive), prompt, more):
            if not message.strip():
                continue
            try:
                if message.startswith("/"):
                    if not session.command(message):
                        break
                    continue
                result = session.send(message)
                if result.status is RunStatus.INTERRUPTED:
                    print("(interrupted)")
            except KeyboardInterrupt:
                print("(interrupted)")
            except CodeloopError as e:
                print(f"codeloop: error: {e}", file=sys.stderr)
    finally:
        session.close()
    return 0
