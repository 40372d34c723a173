"""Render agent events on a terminal as they happen: the model's text, cell output, the answer.

Colours and the spinner appear only on a TTY (and never with ``NO_COLOR`` set); piped output
is plain text, so scripts and logs get exactly what happened, answer last.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TextIO

from codeloop.agent.events import (
    AgentEvent,
    CellOutput,
    CellStart,
    Finished,
    ModelStart,
    ModelText,
    Notice,
    StepDone,
)
from codeloop.agent.observation import trim_middle, trim_traceback
from codeloop.agent.result import AgentResult, Step
from codeloop.text.terminal import printable

__all__ = ["ConsolePrinter", "wants_color"]

_STYLES = {"dim": "2", "bold": "1", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}


def wants_color(stream: TextIO) -> bool:
    """Colour only for a terminal, and never when ``NO_COLOR`` is set (https://no-color.org)."""
    return hasattr(stream, "isatty") and stream.isatty() and not os.environ.get("NO_COLOR")


class _Spinner:
    """A one-line "working" indicator drawn by a background thread; cleared before any other output."""

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, label: str) -> None:
        self.stop()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, args=(label, self._stop), daemon=True)
        self._thread.start()

    def _spin(self, label: str, stop: threading.Event) -> None:
        i = 0
        while not stop.wait(0.1):
            with self.lock:
                if stop.is_set():
                    return
                self.out.write(f"\r{self.FRAMES[i % len(self.FRAMES)]} {label}")
                self.out.flush()
            i += 1

    def stop(self) -> None:
        if self._thread is None:
            return
        with self.lock:
            self._stop.set()
            self.out.write("\r\033[K")
            self.out.flush()
        self._thread.join()
        self._thread = None


class ConsolePrinter:
    """An agent event handler that writes a readable live transcript to ``out``."""

    def __init__(
        self, out: TextIO | None = None, *, color: bool | None = None, show_answer: bool = True
    ) -> None:
        self.out = out or sys.stdout
        self.color = wants_color(self.out) if color is None else color
        self.show_answer = show_answer
        self._spinner = _Spinner(self.out) if self.color else None
        self._at_line_start = True
        self._live_output = False

    def style(self, text: str, *names: str) -> str:
        if not self.color or not text:
            return text
        codes = ";".join(_STYLES[n] for n in names)
        return f"\033[{codes}m{text}\033[0m"

    def write(self, text: str) -> None:
        if self._spinner is not None:
            self._spinner.stop()
        if text:
            self.out.write(text)
            self.out.flush()
            self._at_line_start = text.endswith("\n")

    def line(self, text: str = "") -> None:
        if not self._at_line_start:
            self.write("\n")
        self.write(text + "\n")

    def spin(self, label: str) -> None:
        if self._spinner is not None:
            self._spinner.start(label)

    def __call__(self, event: AgentEvent) -> None:
        if isinstance(event, ModelStart):
            self.spin("thinking")
        elif isinstance(event, ModelText):
            self.write(self.style(printable(event.text), "cyan") if self.color else printable(event.text))
        elif isinstance(event, CellStart):
            self.line(self.style("── running ──", "dim"))
            self._live_output = False
            self.spin("running")
        elif isinstance(event, CellOutput):
            self._live_output = True
            self.write(self.style(printable(event.text), "yellow") if event.stream == "stderr" else printable(event.text))
        elif isinstance(event, StepDone):
            self.step_done(event.step)
        elif isinstance(event, Notice):
            self.line(self.style(f"· {event.message}", "dim"))
        elif isinstance(event, Finished):
            if self.show_answer:
                self.finished(event.result)

    def step_done(self, step: Step) -> None:
        outcome = step.outcome
        if outcome is None:
            if not self._at_line_start:
                self.write("\n")
            return
        if not self._live_output and outcome.stdout:
            self.write(printable(trim_middle(outcome.stdout, 4000)))
        self._live_output = False
        if outcome.ok and outcome.value is not None:
            self.line(self.style("→ ", "dim") + printable(trim_middle(outcome.value, 2000)))
        elif outcome.ok and outcome.probed_name and outcome.probed_value is not None:
            self.line(
                self.style(f"→ {printable(outcome.probed_name)} = ", "dim") + printable(trim_middle(outcome.probed_value, 2000))
            )
        if outcome.status == "error" and outcome.error:
            self.line(self.style(printable(trim_traceback(outcome.error.get("traceback", ""))), "red"))
        elif not outcome.ok:
            self.line(self.style(f"cell stopped: {outcome.status}", "red"))
        for note in outcome.notes:
            self.line(self.style(f"· {printable(note)}", "dim"))
        for fig in step.figures:
            self.line(self.style("figure: ", "dim") + (fig.path or "(not saved)"))
        self.line(self.style(f"── {outcome.status} in {outcome.duration:.2f} s ──", "dim"))

    def finished(self, result: AgentResult) -> None:
        if result.ok and result.answer is not None:
            label = "Answer (from the executed output)" if result.answer_source == "output" else "Answer"
            self.line(self.style(f"{label}:", "bold", "green") + " " + printable(result.answer))
        else:
            why = result.error or f"stopped: {result.status.value}"
            self.line(self.style("No answer:", "bold", "red") + f" {printable(why)}")
            if result.evidence:
                self.line(self.style("Last output:", "dim") + " " + printable(trim_middle(result.evidence, 500)))
