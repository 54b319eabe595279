"""The CLI's one progress display: library code reports through ``progress(message)``.

A message is a plain ``str`` (printed as a line, never parsed) or an
:class:`edgekit.progress.Progress` event (also printed as its line). On a terminal, an event
with a total moves the one bar of its stage; the bar is removed when its step reaches the
total, when the stage's count starts over it is reused, and the whole display is stopped
before any final table or error is printed (:func:`close_all`), so those are never erased.
Without a terminal on stderr (CI logs, pipes, ``CliRunner``) or with ``--quiet`` nothing but
plain text is written: control characters in messages are dropped, no escape sequences.
"""
from __future__ import annotations

import atexit
import re
import sys
import weakref
from typing import Any

import click

from edgekit.progress import Progress as Event

_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]")
QUIET_KEY = "edgekit.quiet"
VERBOSE_KEY = "edgekit.verbose"
_OPEN: "weakref.WeakSet[Display]" = weakref.WeakSet()


def plain(message: str) -> str:
    """``message`` without escape sequences and control characters (tabs and newlines kept)."""
    return _CONTROL.sub("", str(message))


def global_quiet() -> bool:
    """Whether ``edgekit --quiet COMMAND`` was given (the group's option)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().meta.get(QUIET_KEY))


def close_all() -> None:
    """Stop every live display (before a final table or error line, and at exit)."""
    for display in list(_OPEN):
        display.close()


atexit.register(close_all)


class Display:
    """Callable progress sink: ``Display(quiet)(message)``. ``live``: draw bars (default: stderr is a
    terminal); ``stream``: where lines go (default stderr). ``close()`` stops the bars; the CLI
    calls it when the command ends, before tables and errors, and at exit."""

    def __init__(self, quiet: bool = False, live: bool | None = None, stream: Any = None) -> None:
        self.quiet = quiet or global_quiet()
        self.stream = stream
        out = stream if stream is not None else sys.stderr
        self.live = bool(hasattr(out, "isatty") and out.isatty()) if live is None else live
        self._bar: Any = None
        self._tasks: dict[str, tuple[Any, int, int]] = {}  # stage -> (task id, step, total): one bar a stage
        ctx = click.get_current_context(silent=True)
        if ctx is not None:
            ctx.call_on_close(self.close)

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        line = plain(message)
        if not self.live:
            click.echo(line, file=self.stream, err=self.stream is None)
            return
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False, emoji=False)
        else:
            click.echo(line, file=self.stream, err=self.stream is None)
        if isinstance(message, Event) and message.total:
            self._advance(message)

    @property
    def stages(self) -> list[str]:
        """The stages that have a bar now."""
        return list(self._tasks)

    def _advance(self, event: Event) -> None:
        total = event.total or 0
        step = max(0, min(event.step, total))
        known = self._tasks.get(event.stage)
        if event.done:
            if known is not None:
                self._bar.remove_task(known[0])
                del self._tasks[event.stage]
                if not self._tasks:
                    self.close()
            return
        bar = self._ensure_bar()
        info = "  ".join(f"{k} {v:.4g}" for k, v in event.metrics.items())
        if known is None:
            task = bar.add_task(event.stage, total=total, completed=step, info=info)
        else:
            task, before, before_total = known
            if step < before or total != before_total:  # the stage counts again: its bar, reset
                bar.reset(task, total=total, completed=step, info=info)
            else:
                bar.update(task, completed=step, info=info)
        self._tasks[event.stage] = (task, step, total)

    def _ensure_bar(self) -> Any:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

            console = Console(file=self.stream if self.stream is not None else sys.stderr, force_terminal=True)
            stdout_tty = bool(getattr(sys.stdout, "isatty", lambda: False)())
            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("{task.fields[info]}"), console=console, transient=True,
                            redirect_stdout=stdout_tty and self.stream is None, redirect_stderr=self.stream is None)
            self._bar.start()
            self._tasks = {}
            _OPEN.add(self)
        return self._bar

    def close(self) -> None:
        """Stop the bars (idempotent); later events start a new display."""
        bar, self._bar, self._tasks = self._bar, None, {}
        _OPEN.discard(self)
        if bar is not None:
            bar.stop()


__all__ = ["Display", "QUIET_KEY", "VERBOSE_KEY", "close_all", "global_quiet", "plain"]
