"""Progress events: what the Python API's ``progress`` callbacks receive for counted work.

A callback gets either a plain ``str`` (a message line) or a :class:`Progress` event. The
event *is* a ``str`` (its message line), so callbacks written for strings keep working
(``print``, ``"epoch" in m``, f-strings); the CLI reads its ``stage``, ``step`` and ``total``
to move one progress bar per stage. Counts are never parsed out of text: a plain message
such as ``"conv3 9/64 channels empty"`` is only ever a line.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping


class Progress(str):
    """A counted progress message: ``step`` of ``total`` (None: unknown) in ``stage``.

    ``Progress("epoch", 3, 10, "epoch 3/10  loss 0.21", {"loss": 0.21})``; without a message
    the line is ``"epoch 3/10"``. ``metrics``: numbers a display may show beside the bar.
    """

    stage: str
    step: int
    total: int | None
    metrics: Mapping[str, float]

    def __new__(cls, stage: str, step: int, total: int | None = None, message: str = "",
                metrics: Mapping[str, float] | None = None) -> "Progress":
        text = message or (f"{stage} {step}/{total}" if total else f"{stage} {step}")
        obj = super().__new__(cls, text)
        obj.stage, obj.step, obj.total = str(stage), int(step), None if total is None else int(total)
        obj.metrics = dict(metrics or {})
        return obj

    @property
    def message(self) -> str:
        """The message line as a plain ``str``."""
        return str.__str__(self)

    @property
    def done(self) -> bool:
        """Whether the stage reached its total (its bar ends)."""
        return self.total is not None and self.step >= self.total

    def with_message(self, message: str) -> "Progress":
        """The same event with another line (e.g. indented by a caller)."""
        return Progress(self.stage, self.step, self.total, message, self.metrics)

    def __reduce__(self) -> tuple[Any, ...]:  # pickling keeps the fields (process pools)
        return (Progress, (self.stage, self.step, self.total, self.message, dict(self.metrics)))

    def __repr__(self) -> str:
        return f"Progress({self.stage!r}, {self.step}, {self.total}, {self.message!r})"


def counted(stage: str, step: int, total: int | None, message: str = "", **metrics: float) -> Progress:
    """``Progress(stage, step, total, message, metrics)``: short for call sites."""
    return Progress(stage, step, total, message, metrics)


def prefixed(say: Callable[[str], None], prefix: str) -> Callable[[str], None]:
    """A callback that puts ``prefix`` before each line and passes events on as events."""
    def inner(message: str) -> None:
        if isinstance(message, Progress):
            say(message.with_message(prefix + message.message))
        else:
            say(prefix + message)

    return inner


__all__ = ["Progress", "counted", "prefixed"]
