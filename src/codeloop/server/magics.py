"""IPython/Jupyter magics: ``%load_ext codeloop``, then ``%%codeloop`` and ``%codeloop_exec``.

``%%codeloop`` treats the cell as a task: the agent writes and runs code in a codeloop sandbox,
and the notebook shows each cell it ran, its output and figures, then the answer.
``%codeloop_exec`` (line or cell) runs code in that same sandbox instead of the kernel, so the
agent's variables can be inspected. ``%codeloop_reset`` starts a fresh sandbox.
"""

from __future__ import annotations

import sys
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import Image, Markdown, display

from codeloop.agent import Agent, AgentEvent, Limits, StepDone, fan_out
from codeloop.errors import CodeloopError, HistoryError
from codeloop.sandbox import RunResult

__all__ = ["CodeloopMagics", "load_ipython_extension", "unload_ipython_extension"]


class SandboxCellError(Exception):
    """The code failed in the sandbox; shown with the sandbox's own traceback, not the magic's."""

    def __init__(self, result: RunResult) -> None:
        error = result.error
        super().__init__(f"{error.ename}: {error.evalue}" if error else str(result.status))
        self.result = result

    def _render_traceback_(self) -> list[str]:
        error = self.result.error
        if error is not None:
            return error.traceback.rstrip("\n").splitlines()
        return [f"codeloop: the cell ended with status {self.result.status}", *self.result.notes]


class Answer(str):
    """The task's answer: shows as bold Markdown in a notebook, as plain text in a terminal."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return f"**Answer:** {self}"


class Value(str):
    """A sandbox cell's last value (its repr, made in the sandbox), shown as it is."""

    def __repr__(self) -> str:
        return str(self)


def _fence(code: str) -> str:
    ticks = "````" if "```" in code else "```"
    return f"{ticks}python\n{code}\n{ticks}"


@magics_class
class CodeloopMagics(Magics):
    """One codeloop sandbox per kernel, shared by the agent and ``%codeloop_exec``."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self._sandbox: Any = None
        self._timeout: float | None = None
        self._models: dict[tuple[str | None, str | None], Any] = {}

    def sandbox(self, timeout: float = 30.0) -> Any:
        if self._sandbox is None or self._sandbox.closed:
            from codeloop.sandbox import Sandbox

            self._sandbox = Sandbox(timeout=timeout)
        return self._sandbox

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    def model(self, name: str | None, base_url: str | None) -> Any:
        key = (name, base_url)
        if key not in self._models:
            from codeloop.llm import get_model

            self._models[key] = get_model(name, base_url=base_url)
        return self._models[key]

    # -- %%codeloop ----------------------------------------------------------------------------

    @magic_arguments()
    @argument("--model", default=None, help="model name or alias (default: the configured default)")
    @argument("--base-url", default=None, help="base URL of an OpenAI-compatible server")
    @argument("--timeout", type=float, default=None, help="seconds for the whole task (default 300)")
    @argument("--max-steps", type=int, default=None, help="most cells the agent may run (default 6)")
    @argument("--no-history", action="store_true", help="do not store this task in the history")
    @cell_magic
    def codeloop(self, line: str, cell: str) -> Any:
        """%%codeloop [--model NAME] [--timeout S]: the cell is a task; the agent solves it in a sandbox."""
        args = parse_argstring(self.codeloop, line)
        task = (cell or "").strip()
        if not task:
            print("codeloop: write the task in the cell below %%codeloop", file=sys.stderr)
            return None
        defaults = Limits()
        try:
            limits = Limits(
                max_steps=args.max_steps or defaults.max_steps,
                max_seconds=args.timeout or defaults.max_seconds,
                max_tokens=defaults.max_tokens,
                cell_timeout=defaults.cell_timeout,
            )
            model = self.model(args.model, args.base_url)
        except CodeloopError as e:
            print(f"codeloop: {e}", file=sys.stderr)
            return None
        recorder, history = (None, None) if args.no_history else _recorder(task, getattr(model, "name", ""))
        try:
            agent = Agent(
                model, sandbox=self.sandbox(), limits=limits, on_event=fan_out([recorder, _show_step])
            )
            result = agent.run(task)
        except KeyboardInterrupt:
            print("codeloop: interrupted", file=sys.stderr)
            return None
        finally:
            if history is not None:
                history.close()
        if self.shell is not None:
            self.shell.user_ns["_codeloop"] = result  # the whole run (steps, usage), for inspection
        if result.ok:
            return Answer(result.answer or "")
        print(
            f"codeloop: no answer ({result.status.value}){': ' + result.error if result.error else ''}",
            file=sys.stderr,
        )
        return None

    # -- %codeloop_exec ------------------------------------------------------------------------

    @magic_arguments()
    @argument("--timeout", type=float, default=None, help="seconds for this cell (default 30)")
    @argument("code", nargs="*", help="the code (line magic); as a cell magic the cell is the code")
    @line_cell_magic
    def codeloop_exec(self, line: str, cell: str | None = None) -> Any:
        """%codeloop_exec CODE or %%codeloop_exec: run code in the codeloop sandbox, not in this kernel."""
        if cell is None:
            options, code = "", line  # the whole line is code: no options in the line form
        else:
            options, code = line, cell
        args = parse_argstring(self.codeloop_exec, options)
        if cell is not None and args.code:
            print("codeloop: %%codeloop_exec takes options only on its first line", file=sys.stderr)
            return None
        try:
            result = self.sandbox().run(code, timeout=args.timeout)
        except CodeloopError as e:
            print(f"codeloop: {e}", file=sys.stderr)
            return None
        if result.stdout:
            sys.stdout.write(result.stdout)
            sys.stdout.flush()
        if result.stderr:
            sys.stderr.write(result.stderr)
            sys.stderr.flush()
        for png in result.figures:
            display(Image(data=png, format="png"))
        for note in result.notes:
            print(f"codeloop: {note}", file=sys.stderr)
        if not result.ok:
            raise SandboxCellError(result)
        return Value(result.value) if result.value is not None else None

    @line_magic
    def codeloop_reset(self, line: str) -> None:
        """%codeloop_reset: close the sandbox; the next magic starts a fresh one."""
        self.close()
        print("codeloop: the sandbox was reset")


def _show_step(event: AgentEvent) -> None:
    """Display each cell the agent ran with its output and figures, as it completes."""
    if not isinstance(event, StepDone) or event.step.code is None:
        return
    step = event.step
    parts = [_fence(step.code or "")]
    outcome = step.outcome
    if outcome is not None:
        shown = outcome.stdout.rstrip("\n")
        if outcome.value is not None:
            shown += ("\n" if shown else "") + outcome.value
        if outcome.error:
            shown += ("\n" if shown else "") + f"{outcome.error.get('ename')}: {outcome.error.get('evalue')}"
        if shown:
            parts.append(_fence(shown).replace("```python", "```text", 1))
        if outcome.status != "ok":
            parts.append(f"*cell status: {outcome.status}*")
    display(Markdown("\n\n".join(parts)))
    for fig in step.figures:
        if fig.png is not None:
            display(Image(data=fig.png, format="png"))


def _recorder(task: str, model_name: str) -> tuple[Any, Any]:
    from codeloop.store import History, Recorder

    try:
        history = History()
        conversation = history.new_conversation("run", task, model_name)
    except HistoryError as e:
        print(f"codeloop: warning: history is off for this task: {e}", file=sys.stderr)
        return None, None
    recorder = Recorder(history, conversation)
    recorder.begin(task)
    return recorder, history


_loaded: list[CodeloopMagics] = []


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext codeloop``."""
    magics = CodeloopMagics(ipython)
    ipython.register_magics(magics)
    _loaded.append(magics)


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext codeloop``: close the sandbox."""
    while _loaded:
        _loaded.pop().close()
