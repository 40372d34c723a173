"""The messages the model sees for one task, kept short and focused for small models.

Small models copy what is in front of them: shown three failed attempts, they write a fourth
copy. So (when ``focus`` is on) a new failure replaces the failures before it, and when the
model repeats failing code anyway, the task restarts from a clean slate with a note about the
error instead of the code.
"""

from __future__ import annotations

__all__ = ["TurnContext"]

Message = dict[str, str]


class TurnContext:
    """Base messages (system, examples, earlier turns, the task) plus this task's exchanges."""

    def __init__(self, base: list[Message], *, focus: bool = True, examples: int = 0) -> None:
        if not base or base[-1]["role"] != "user":
            raise ValueError("the base messages must end with the task as a user message")
        self.base = [dict(m) for m in base]
        self.focus = focus
        self.examples = examples  # worked-example messages right after the system prompt
        self.examples_dropped = False
        self._entries: list[tuple[list[Message], bool]] = []  # (reply + observation, failed?)

    def messages(self) -> list[Message]:
        return [*self.base, *(m for msgs, _ in self._entries for m in msgs)]

    def add(self, reply: str, observation: str | None, *, failed: bool = False) -> None:
        """Record a reply and what the model was told about it."""
        if self.focus and failed:
            while self._entries and self._entries[-1][1]:
                self._entries.pop()
        msgs = [{"role": "assistant", "content": reply}]
        if observation is not None:
            msgs.append({"role": "user", "content": observation})
        self._entries.append((msgs, failed))

    def restart(self, note: str) -> None:
        """Forget this task's exchanges and restate the task with ``note`` appended.

        The worked examples go too: the repeated program often copies their pattern, and the
        same model without them writes a different program (a different prompt, not just a
        different sample).
        """
        self._entries.clear()
        if self.examples:
            del self.base[1 : 1 + self.examples]
            self.examples, self.examples_dropped = 0, True
        task = self.base[-1]["content"].split("\n\nNote: ")[0]
        self.base[-1] = {"role": "user", "content": f"{task}\n\nNote: {note}"}
