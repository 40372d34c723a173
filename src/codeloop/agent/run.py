"""The "answer a question" workflow: one task through the engine's loop.

Generate a reply, review its code, run it, show the model what happened, judge whether the
answer stands (the phases of :func:`codeloop.engine.drive`). The per-task state lives here (the
model's context, the evidence so far, the clock); its collaborators (the model, the session, the
knobs, the event handler) are passed in, and the public face is :class:`codeloop.agent.Agent`.
Two kinds of failure are kept apart: the user's code failing is an observation that goes back
to the model; the model backend or the sandbox failing (ModelError, SandboxError) ends the run
as ``aborted``, and Ctrl-C as ``interrupted``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from codeloop.agent.cells import last_assigned_name, outcome_from_run
from codeloop.agent.checks import NOT_COMPUTED, SAME_FAILING_CODE, normalise_code, prints_only_literals
from codeloop.agent.context import TurnContext
from codeloop.agent.events import (
    AgentEvent,
    CellOutput,
    CellStart,
    EventHandler,
    Finished,
    ModelStart,
    ModelText,
    Notice,
    StepDone,
)
from codeloop.agent.generation import generate
from codeloop.agent.grounding import echoes, ground_answer
from codeloop.agent.hints import columns_hint, names_hint
from codeloop.agent.observation import evidence_of, format_observation
from codeloop.agent.prompts import NUDGE_FIX_CODE, NUDGE_WRITE_CODE, answer_format
from codeloop.agent.result import AgentResult, CellOutcome, Figure, Step, TaskStatus, TaskUsage
from codeloop.agent.settings import Limits, Strategy
from codeloop.agent.voting import pick_winner
from codeloop.engine.generation import Generation
from codeloop.engine.imports import import_for_name_error
from codeloop.engine.loop import Review, Verdict, drive
from codeloop.errors import ModelError, SandboxError
from codeloop.llm.contract import ChatModel
from codeloop.llm.types import Sampling
from codeloop.sandbox.contract import Session
from codeloop.text import ParsedReply, parse_reply

__all__ = ["Attempt", "TaskRun"]

Message = dict[str, str]


@dataclass
class Attempt:
    """One model reply of the task: its text, the code in it, and what the loop made of it."""

    index: int
    gen: Generation
    parsed: ParsedReply
    previous: str | None = None  # the evidence before this reply's code ran
    final: bool = False  # a reply without code that the loop takes as the answer


class TaskRun:
    """The state of one task: the model's context, the result being built, the evidence, the clock.

    ``messages`` is the model's starting context (system prompt, ``examples`` worked-example
    messages, earlier turns, the task); ``session`` gives the sandbox session cells run in (made
    on first use); ``on_interrupt`` repairs the session after Ctrl-C stopped a cell mid-run.
    """

    def __init__(
        self,
        task: str,
        messages: Sequence[Message],
        *,
        model: ChatModel,
        session: Callable[[], Session],
        limits: Limits,
        strategy: Strategy,
        examples: int = 0,
        emit: EventHandler | None = None,
        on_interrupt: Callable[[], None] | None = None,
    ) -> None:
        self.model = model
        self.session = session
        self.limits = limits
        self.strategy = strategy
        self.on_event = emit
        self.on_interrupt = on_interrupt
        self.started = time.monotonic()
        self.deadline = self.started + self.limits.max_seconds
        self.result = AgentResult(task=task, model=str(getattr(model, "name", "")))
        self.context = TurnContext(list(messages), focus=self.strategy.focus_repairs, examples=examples)
        self.evidence: str | None = None  # what the latest successful cell showed
        self.cells = 0  # cells run (a step's reruns and vote candidates count once)
        self.code_replies = 0  # replies with code, run or not: what --max-steps limits
        self.nudges = 0
        self.in_cell = False
        self.objected_literal = False
        self.last_failure: str | None = None  # the normalised code of the last cell that failed
        self.last_error = ""  # what went wrong with that code, as a sentence for a restart note
        self.retries = 0  # times the model repeated failing code: later replies are sampled
        # The task's words on the answer's form, repeated when the final answer is asked for.
        self.answer_format = answer_format(task) if self.strategy.restate_task else ""

    def emit(self, event: AgentEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    # -- the workflow, driven by the engine -------------------------------------------------

    def execute(self) -> AgentResult:
        try:
            drive(self)
        except ModelError as e:
            self.result.status, self.result.error = TaskStatus.ABORTED, f"model error: {e}"
        except SandboxError as e:
            self.result.status, self.result.error = TaskStatus.ABORTED, f"sandbox error: {e}"
        except KeyboardInterrupt:
            self.result.status, self.result.error = TaskStatus.INTERRUPTED, "interrupted by the user"
            if self.in_cell:
                # The worker may still be running the cell: its state cannot be trusted any more.
                if self.on_interrupt is not None:
                    self.on_interrupt()
                self.emit(Notice("the cell was stopped; the sandbox restarted and its variables are gone"))
        finally:
            self.result.timings.total_s = time.monotonic() - self.started
        self.result.evidence = self.evidence
        self.emit(Finished(self.result))
        return self.result

    def generate(self) -> Attempt | None:
        """The next model reply; None when a limit is reached or the reply ran into the deadline."""
        stop = self.limit_reached()
        if stop is not None:
            self.result.status = stop
            return None
        index = len(self.result.steps)
        self.emit(ModelStart(index))
        temperature, seed = self.sampling()
        gen = self.reply(on_text=lambda t: self.emit(ModelText(t)), temperature=temperature, seed=seed)
        parsed = parse_reply(gen.text)
        if gen.finish_reason == "deadline":
            self.add_step(Step(index, gen.text, code=parsed.code))
            self.result.status = TaskStatus.TIMEOUT
            return None
        return Attempt(index, gen, parsed)

    def review(self, attempt: Attempt) -> Review:
        """Run the reply's code unless it is over the step limit or would teach the model nothing."""
        code = attempt.parsed.code
        if code is None:
            return Review.RUN  # a reply without code: nothing to review (observe decides)
        self.code_replies += 1
        if self.code_replies > self.limits.max_steps:
            self.add_step(Step(attempt.index, attempt.gen.text, code=code))
            self.result.status = TaskStatus.MAX_STEPS
            return Review.STOP
        objection = self.objection(code)
        if objection is None:
            return Review.RUN
        restart = objection == SAME_FAILING_CODE and self.strategy.focus_repairs
        self.add_step(Step(attempt.index, attempt.gen.text, code=code, observation=objection), to_context=not restart)
        self.emit(Notice("the code was not run: " + objection.split(". ")[0].lower()))
        if restart:
            self.context.restart(f"{self.last_error} Write a different program.")
        return Review.SKIP

    def run(self, attempt: Attempt) -> Step | None:
        """Run the reply's code (None for a reply without code)."""
        if attempt.parsed.code is None:
            return None
        attempt.previous = self.evidence
        return self.run_code_step(attempt.index, attempt.gen, attempt.parsed.code)

    def observe(self, attempt: Attempt, step: Step | None) -> None:
        """Put the step in the result and the model's context; a reply without code may get a nudge."""
        if step is not None:
            self.add_step(step)
            return
        # A reply without code: the answer, unless there is nothing to stand on yet (then one nudge).
        no_result = self.evidence is None and (self.cells == 0 or self.last_failure is not None)
        if self.strategy.require_code and no_result and self.nudges < 2:
            self.nudges += 1
            nudge = NUDGE_WRITE_CODE if self.cells == 0 else NUDGE_FIX_CODE
            self.add_step(Step(attempt.index, attempt.gen.text, observation=nudge))
            self.emit(Notice("the model answered without a result to stand on: asking it for code"))
            return
        self.add_step(Step(attempt.index, attempt.gen.text))
        attempt.final = True

    def judge(self, attempt: Attempt, step: Step | None) -> Verdict:
        """Done when the model answered in words, or ran code again and got the same output."""
        if step is None:
            if not attempt.final:
                return Verdict.AGAIN
            self.finish_with_answer(attempt.parsed.prose or attempt.gen.text.strip())
            return Verdict.DONE
        previous = attempt.previous
        if step.outcome is not None and previous is not None and evidence_of(step.outcome) == previous:
            # The model ran code again and got the same output: it is looping, not progressing.
            self.result.answer, self.result.answer_source = previous, "output"
            self.result.status = TaskStatus.ANSWERED
            return Verdict.DONE
        return Verdict.AGAIN

    # -- pieces -----------------------------------------------------------------------------

    def limit_reached(self) -> TaskStatus | None:
        if self.result.usage.completion_tokens >= self.limits.max_tokens:
            return TaskStatus.MAX_TOKENS
        if time.monotonic() >= self.deadline:
            return TaskStatus.TIMEOUT
        return None

    def objection(self, code: str) -> str | None:
        """Why this code should not run (the model would learn nothing from it), or None to run it."""
        if not self.strategy.review_code:
            return None
        if self.cells == 0 and prints_only_literals(code) and not self.objected_literal:
            self.objected_literal = True
            # Sending the same program again is then a repeat: restart with a note, sampled.
            self.last_failure = normalise_code(code)
            self.last_error = (
                "An earlier attempt only printed a value typed into the code; nothing was computed."
            )
            return NOT_COMPUTED
        if self.last_failure is not None and normalise_code(code) == self.last_failure:
            self.retries += 1  # greedy decoding repeats itself: sample the next reply instead
            return SAME_FAILING_CODE
        return None

    def sampling(self) -> tuple[float, int | None]:
        """Greedy by default; after the model repeated failing code, sample (seeded) to get out of the rut.

        The first restart already drops the worked examples, a different prompt: it stays greedy.
        """
        if self.retries <= (1 if self.context.examples_dropped else 0):
            return 0.0, None
        return self.strategy.vote_temperature, self.strategy.seed + 100 + self.retries

    def reply(
        self,
        *,
        on_text: Callable[[str], None] | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Generation:
        budget = min(self.limits.reply_tokens, self.limits.max_tokens - self.result.usage.completion_tokens)
        sampling = Sampling(max_tokens=max(1, budget), temperature=temperature, seed=seed)
        gen = generate(self.model, self.context.messages(), sampling, deadline=self.deadline, on_text=on_text)
        self.result.usage.add(TaskUsage(gen.prompt_tokens, gen.completion_tokens, 1))
        self.result.timings.model_s += gen.seconds
        return gen

    def add_step(self, step: Step, *, to_context: bool = True) -> None:
        self.result.steps.append(step)
        if to_context:
            failed = step.outcome is not None and not step.outcome.ok
            self.context.add(step.model_text, step.observation, failed=failed)
        self.emit(StepDone(step))

    def finish_with_answer(self, words: str) -> None:
        """Set the answer: the model's words, unless they contradict the executed output."""
        if self.strategy.ground_answer:
            given = "\n".join([self.result.task, *(s.code for s in self.result.steps if s.code)])
            answer, source = ground_answer(words, self.evidence, given)
        else:
            answer, source = words, "model"
        told = "\n".join(s.observation for s in self.result.steps[-3:] if s.observation)
        if not answer:
            self.result.status, self.result.error = TaskStatus.NO_ANSWER, "the model gave an empty reply"
        elif (
            self.strategy.ground_answer
            and source == "model"
            and self.evidence is None
            and echoes(answer, told)
        ):
            self.result.status = TaskStatus.NO_ANSWER
            self.result.error = "the model repeated the loop's own message instead of answering"
        else:
            self.result.answer, self.result.answer_source = answer, source
            self.result.status = TaskStatus.ANSWERED
            if source == "output":
                self.emit(
                    Notice("the model's words disagreed with the executed output: answering from it")
                )

    # -- running cells ----------------------------------------------------------------------

    def probe(self, expression: str) -> str | None:
        """Evaluate an expression in the session (for hints); its repr, or None if it failed."""
        return outcome_from_run(self.session().run(expression, timeout=5.0))[0].value

    def run_cell(self, code: str, *, quiet: bool = False) -> tuple[CellOutcome, list[Figure]]:
        """Run one cell within what is left of the time budget; read its last variable if it showed nothing."""
        if not quiet:
            self.emit(CellStart(len(self.result.steps), code))
        sandbox = self.session()
        timeout = max(0.5, min(self.limits.cell_timeout, self.deadline - time.monotonic()))
        t0 = time.monotonic()
        self.in_cell = True
        try:
            live = None if quiet else (lambda stream, text: self.emit(CellOutput(stream, text)))
            outcome, figures = outcome_from_run(sandbox.run(code, timeout=timeout, on_output=live))
            if self.strategy.probe_value and outcome.ok and evidence_of(outcome) is None:
                name = last_assigned_name(code)
                if name is not None:
                    probe, _ = outcome_from_run(sandbox.run(name, timeout=min(timeout, 5.0)))
                    if probe.ok and probe.value is not None:
                        outcome.probed_name, outcome.probed_value = name, probe.value
        finally:
            self.result.timings.sandbox_s += time.monotonic() - t0
        self.in_cell = False  # only on a normal return: an interrupt leaves it set for recovery
        self.cells += 1
        return outcome, figures

    def run_code_step(self, index: int, gen: Generation, code: str) -> Step:
        outcome, figures = self.run_cell(code)
        for _ in range(3):  # forgotten imports: add the standard one and run the cell again
            stmt = self.missing_import(code, outcome)
            if stmt is None:
                break
            self.emit(Notice(f"adding the missing '{stmt}' and running the cell again"))
            code = f"{stmt}\n{code}"
            outcome, figures = self.run_cell(code)
            self.cells -= 1  # the same step, run again
        step = Step(index, gen.text, code=code, outcome=outcome, figures=figures)
        if self.strategy.votes > 1 and self.cells == 1:
            step = self.vote(step)
        assert step.outcome is not None
        step.observation = format_observation(step.outcome, step.figures, answer_format=self.answer_format)
        self.last_failure = None if step.outcome.ok else normalise_code(step.code or "")
        if not step.outcome.ok:
            error = step.outcome.error
            hint = self.error_hint(step.outcome)
            if hint:
                step.observation += "\n\n" + hint
            what = f"{error.ename}: {error.evalue}" if error else f"status {step.outcome.status}"
            self.last_error = f"An earlier attempt failed with {what}." + (f" {hint}" if hint else "")
        shown = evidence_of(step.outcome)
        if shown is not None:
            self.evidence = shown
        return step

    def missing_import(self, code: str, outcome: CellOutcome) -> str | None:
        if not self.strategy.focus_repairs or outcome.error is None:
            return None
        return import_for_name_error(self.probe, outcome.error.ename, outcome.error.evalue, code)

    def error_hint(self, outcome: CellOutcome) -> str | None:
        """What the session can add to an error: a module's real names, a DataFrame's real columns."""
        if not self.strategy.focus_repairs or outcome.error is None:
            return None
        ename, evalue = outcome.error.ename, outcome.error.evalue
        return names_hint(self.probe, ename, evalue) or columns_hint(self.probe, ename, evalue)

    def vote(self, greedy: Step) -> Step:
        """Sample more programs for the same step, run each, and keep the one most others agree with."""
        steps = [greedy]
        for k in range(1, self.strategy.votes):
            if self.limit_reached() is not None:
                break
            gen = self.reply(temperature=self.strategy.vote_temperature, seed=self.strategy.seed + k)
            parsed = parse_reply(gen.text)
            if parsed.code is None:
                continue
            outcome, figures = self.run_cell(parsed.code, quiet=True)
            self.cells -= 1  # candidates of one step count as one step
            steps.append(Step(greedy.index, gen.text, code=parsed.code, outcome=outcome, figures=figures))
        winner, agreement = pick_winner([s.outcome for s in steps if s.outcome is not None])
        chosen = steps[winner]
        chosen.candidates, chosen.agreement = len(steps), agreement
        if winner != len(steps) - 1 and chosen.code is not None:
            # Leave the session in the state the winning program made.
            self.run_cell(chosen.code, quiet=True)
            self.cells -= 1
        self.emit(Notice(f"{len(steps)} programs sampled; {agreement} agree on the chosen output"))
        return chosen
