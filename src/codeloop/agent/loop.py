"""The agent loop: the model writes code, the sandbox runs it, the model sees what happened.

Two kinds of failure are kept apart. The user's code failing is an observation: it goes back
to the model, which repairs. The model backend or the sandbox itself failing (ModelError,
SandboxError) aborts the run with a clear error; so does Ctrl-C, cleanly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from types import TracebackType

from codeloop.agent.cells import SessionLike, last_assigned_name, outcome_from_run
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
from codeloop.agent.generation import Generation, ModelLike, generate
from codeloop.agent.grounding import echoes, ground_answer
from codeloop.agent.hints import missing_module_name, module_names_probe, parse_names
from codeloop.agent.observation import evidence_of, format_observation
from codeloop.agent.parsing import ParsedReply, parse_reply
from codeloop.agent.prompts import NUDGE_FIX_CODE, NUDGE_WRITE_CODE, SYSTEM_PROMPT, few_shot_messages
from codeloop.agent.result import AgentResult, CellOutcome, Figure, RunStatus, Step
from codeloop.agent.settings import Limits, Strategy
from codeloop.agent.voting import pick_winner
from codeloop.errors import ConfigError, ModelError, SandboxError

__all__ = ["Agent"]

Message = dict[str, str]


class Agent:
    """Answers tasks by having ``model`` write Python that runs in one stateful sandbox session.

    >>> with Agent(get_model()) as agent:          # doctest: +SKIP
    ...     result = agent.run("What is 2**100?")
    ...     print(result.answer)

    ``run`` never raises for the model's or the code's failures: the returned
    :class:`AgentResult` says how the run ended (``status``, ``error``).
    """

    def __init__(
        self,
        model: ModelLike,
        *,
        sandbox: SessionLike | None = None,
        sandbox_factory: Callable[[], SessionLike] | None = None,
        limits: Limits | None = None,
        strategy: Strategy | None = None,
        on_event: EventHandler | None = None,
        system_prompt: str = SYSTEM_PROMPT,
    ) -> None:
        self.model = model
        self.limits = limits or Limits()
        self.strategy = strategy or Strategy()
        self.on_event = on_event
        self.system_prompt = system_prompt
        self._sandbox = sandbox
        self._owns_sandbox = sandbox is None
        self._factory = sandbox_factory or self._default_sandbox

    def _default_sandbox(self) -> SessionLike:
        from codeloop.sandbox import Sandbox  # imported late: the loop's tests never need it

        return Sandbox(timeout=self.limits.cell_timeout)

    @property
    def sandbox(self) -> SessionLike:
        """The session cells run in; created on first use and kept across runs (state persists)."""
        if self._sandbox is None:
            self._sandbox = self._factory()
        return self._sandbox

    def emit(self, event: AgentEvent) -> None:
        """Pass an event to the handler, if any."""
        if self.on_event is not None:
            self.on_event(event)

    def recover_from_interrupt(self) -> None:
        """After Ctrl-C stopped a cell mid-run: restart the worker (files kept) or drop the session."""
        restart = getattr(self._sandbox, "restart", None)
        if callable(restart):
            try:
                restart()
                return
            except SandboxError:
                pass
        self.reset()

    def reset(self) -> None:
        """Forget the session's state: the next run starts in a fresh sandbox (if this agent made it)."""
        if self._owns_sandbox and self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    def close(self) -> None:
        """Close the sandbox this agent created (a sandbox passed in stays the caller's)."""
        self.reset()

    def __enter__(self) -> Agent:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def initial_messages(self, task: str, history: Sequence[Message] = ()) -> list[Message]:
        """System prompt, worked examples, earlier turns, then the task."""
        messages = [{"role": "system", "content": self.system_prompt}]
        if self.strategy.few_shot:
            messages.extend(few_shot_messages())
        messages.extend(dict(m) for m in history)
        messages.append({"role": "user", "content": task})
        return messages

    def run(self, task: str, *, history: Sequence[Message] = ()) -> AgentResult:
        """Solve ``task``; ``history`` holds earlier turns' messages (multi-turn chat)."""
        if not isinstance(task, str) or not task.strip():
            raise ConfigError("the task is empty: say what to compute")
        return _Run(self, task.strip(), history).execute()


class _Run:
    """The state of one task: messages so far, the result being built, the evidence, the clock."""

    def __init__(self, agent: Agent, task: str, history: Sequence[Message]) -> None:
        self.agent = agent
        self.limits = agent.limits
        self.strategy = agent.strategy
        self.started = time.monotonic()
        self.deadline = self.started + self.limits.max_seconds
        self.result = AgentResult(task=task, model=str(getattr(agent.model, "name", "")))
        self.context = TurnContext(agent.initial_messages(task, history), focus=self.strategy.focus_repairs)
        self.evidence: str | None = None
        self.cells = 0
        self.code_replies = 0
        self.in_cell = False
        self.objected_literal = False
        self.last_failure: str | None = None  # the normalised code of the last cell that failed
        self.last_error = ""  # "ename: evalue (hint)" of that cell, for a restart note
        self.retries = 0

    def execute(self) -> AgentResult:
        try:
            self.loop()
        except ModelError as e:
            self.result.status, self.result.error = RunStatus.ABORTED, f"model error: {e}"
        except SandboxError as e:
            self.result.status, self.result.error = RunStatus.ABORTED, f"sandbox error: {e}"
        except KeyboardInterrupt:
            self.result.status, self.result.error = RunStatus.INTERRUPTED, "interrupted by the user"
            if self.in_cell:
                # The worker may still be running the cell: its state cannot be trusted any more.
                self.agent.recover_from_interrupt()
                self.agent.emit(
                    Notice("the cell was stopped; the sandbox restarted and its variables are gone")
                )
        finally:
            self.result.timings.total_s = time.monotonic() - self.started
        self.result.evidence = self.evidence
        self.agent.emit(Finished(self.result))
        return self.result

    def limit_reached(self) -> RunStatus | None:
        if self.result.usage.completion_tokens >= self.limits.max_tokens:
            return RunStatus.MAX_TOKENS
        if time.monotonic() >= self.deadline:
            return RunStatus.TIMEOUT
        return None

    def loop(self) -> None:
        nudges = 0
        while True:
            stop = self.limit_reached()
            if stop is not None:
                self.result.status = stop
                return
            index = len(self.result.steps)
            self.agent.emit(ModelStart(index))
            temperature, seed = self.sampling()
            gen = self.reply(
                on_text=lambda t: self.agent.emit(ModelText(t)), temperature=temperature, seed=seed
            )
            parsed = parse_reply(gen.text)
            if gen.finish_reason == "deadline":
                self.add_step(Step(index, gen.text, code=parsed.code))
                self.result.status = RunStatus.TIMEOUT
                return
            if parsed.code is None:
                if (
                    self.strategy.require_code
                    and self.evidence is None
                    and nudges < 2
                    and (self.cells == 0 or self.last_failure is not None)
                ):
                    nudges += 1
                    nudge = NUDGE_WRITE_CODE if self.cells == 0 else NUDGE_FIX_CODE
                    self.add_step(Step(index, gen.text, observation=nudge))
                    self.agent.emit(
                        Notice("the model answered without a result to stand on: asking it for code")
                    )
                    continue
                self.add_step(Step(index, gen.text))
                self.finish_with_answer(parsed, gen.text)
                return
            self.code_replies += 1
            if self.code_replies > self.limits.max_steps:
                self.add_step(Step(index, gen.text, code=parsed.code))
                self.result.status = RunStatus.MAX_STEPS
                return
            objection = self.review(parsed.code)
            if objection is not None:
                restart = objection == SAME_FAILING_CODE and self.strategy.focus_repairs
                self.add_step(
                    Step(index, gen.text, code=parsed.code, observation=objection), to_context=not restart
                )
                self.agent.emit(Notice("the code was not run: " + objection.split(". ")[0].lower()))
                if restart:
                    self.context.restart(
                        f"an earlier attempt failed with {self.last_error} Write a different program."
                    )
                continue
            previous = self.evidence
            step = self.run_code_step(index, gen, parsed)
            self.add_step(step)
            if step.outcome is not None and previous is not None and evidence_of(step.outcome) == previous:
                # The model ran code again and got the same output: it is looping, not progressing.
                self.result.answer, self.result.answer_source = previous, "output"
                self.result.status = RunStatus.ANSWERED
                return

    def review(self, code: str) -> str | None:
        """Why this code should not run (the model would learn nothing from it), or None to run it."""
        if not self.strategy.review_code:
            return None
        if self.cells == 0 and prints_only_literals(code) and not self.objected_literal:
            self.objected_literal = True
            return NOT_COMPUTED
        if self.last_failure is not None and normalise_code(code) == self.last_failure:
            self.retries += 1  # greedy decoding repeats itself: sample the next reply instead
            return SAME_FAILING_CODE
        return None

    def sampling(self) -> tuple[float, int | None]:
        """Greedy by default; after the model repeated failing code, sample (seeded) to get out of the rut."""
        if self.retries == 0:
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
        gen = generate(
            self.agent.model,
            self.context.messages(),
            max_tokens=max(1, budget),
            temperature=temperature,
            seed=seed,
            deadline=self.deadline,
            on_text=on_text,
        )
        self.result.usage.add(gen.usage)
        self.result.timings.model_s += gen.seconds
        return gen

    def add_step(self, step: Step, *, to_context: bool = True) -> None:
        self.result.steps.append(step)
        if to_context:
            failed = step.outcome is not None and not step.outcome.ok
            self.context.add(step.model_text, step.observation, failed=failed)
        self.agent.emit(StepDone(step))

    def finish_with_answer(self, parsed: ParsedReply, text: str) -> None:
        words = parsed.prose or text.strip()
        if self.strategy.ground_answer:
            given = "\n".join([self.result.task, *(s.code for s in self.result.steps if s.code)])
            answer, source = ground_answer(words, self.evidence, given)
        else:
            answer, source = words, "model"
        if not answer:
            self.result.status, self.result.error = RunStatus.NO_ANSWER, "the model gave an empty reply"
            return
        told = "\n".join(s.observation for s in self.result.steps[-3:] if s.observation)
        if (
            self.strategy.ground_answer
            and source == "model"
            and self.evidence is None
            and echoes(answer, told)
        ):
            self.result.status = RunStatus.NO_ANSWER
            self.result.error = "the model repeated the loop's own message instead of answering"
            return
        self.result.answer, self.result.answer_source = answer, source
        self.result.status = RunStatus.ANSWERED
        if source == "output":
            self.agent.emit(
                Notice("the model's words disagreed with the executed output: answering from the output")
            )

    def run_cell(self, code: str, *, quiet: bool = False) -> tuple[CellOutcome, list[Figure]]:
        """Run one cell within what is left of the time budget; read its last variable if it showed nothing."""
        index = len(self.result.steps)
        if not quiet:
            self.agent.emit(CellStart(index, code))
        sandbox = self.agent.sandbox
        timeout = max(0.5, min(self.limits.cell_timeout, self.deadline - time.monotonic()))
        t0 = time.monotonic()
        self.in_cell = True
        try:
            live = None if quiet else (lambda stream, text: self.agent.emit(CellOutput(stream, text)))
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

    def run_code_step(self, index: int, gen: Generation, parsed: ParsedReply) -> Step:
        assert parsed.code is not None
        outcome, figures = self.run_cell(parsed.code)
        step = Step(index, gen.text, code=parsed.code, outcome=outcome, figures=figures)
        if self.strategy.votes > 1 and self.cells == 1:
            step = self.vote(step)
        assert step.outcome is not None
        step.observation = format_observation(step.outcome, step.figures)
        self.last_failure = None if step.outcome.ok else normalise_code(step.code or "")
        if not step.outcome.ok:
            hint = self.error_hint(step.outcome)
            if hint:
                step.observation += "\n\n" + hint
            error = step.outcome.error or {}
            what = (
                f"{error.get('ename')}: {error.get('evalue')}" if error else f"status {step.outcome.status}"
            )
            self.last_error = f"{what}." + (f" {hint}" if hint else "")
        shown = evidence_of(step.outcome)
        if shown is not None:
            self.evidence = shown
        return step

    def error_hint(self, outcome: CellOutcome) -> str | None:
        """For "module M has no name X" errors: the names M does have, read from the session."""
        if not self.strategy.focus_repairs or outcome.error is None:
            return None
        missing = missing_module_name(outcome.error.get("ename", ""), outcome.error.get("evalue", ""))
        probe = module_names_probe(missing[0]) if missing else None
        if missing is None or probe is None:
            return None
        names = parse_names(self.agent.sandbox.run(probe, timeout=5.0).value)
        if not names:
            return None
        shown = ", ".join(names[:60]) + (" ..." if len(names) > 60 else "")
        return f"Module {missing[0]} has no {missing[1]!r}; the names it has are: {shown}"

    def vote(self, greedy: Step) -> Step:
        """Sample more programs for the same step, run each, and keep the one most others agree with."""
        assert greedy.outcome is not None
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
        self.agent.emit(Notice(f"{len(steps)} programs sampled; {agreement} agree on the chosen output"))
        return chosen
