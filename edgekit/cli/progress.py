"""The CLI's one progress callback: library code reports lines through ``progress(message)``;
this turns them into a rich progress bar on a terminal, plain lines anywhere else.

A message that counts (``epoch 3/10``, ``target 2/5``, ``trial 4/8``, ``[2/5]``) moves the bar
named by the word before the count; every message is also printed as a line. Without a
terminal on stderr (CI logs, pipes, ``CliRunner``) or with ``--quiet`` nothing but plain
text is written: control characters in messages are dropped, no escape sequences.
"""
from __future__ import annotations

import re
import sys
from typing import Any

import click

COUNT = re.compile(r"(?:^|[\s(])(?P<label>[A-Za-z][\w-]*) (?P<done>\d+)/(?P<total>\d+)\b|\[(?P<d2>\d+)/(?P<t2>\d+)\]")
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")
QUIET_KEY = "edgekit.quiet"


def plain(message: str) -> str:
    """``message`` without escape sequences and control characters (tabs and newlines kept)."""
    return _CONTROL.sub("", message)


def counted(message: str) -> tuple[str, int, int] | None:
    """``(label, done, total)`` of a counting message, e.g. ``("epoch", 3, 10)``; None otherwise."""
    m = COUNT.search(message)
    if m is None:
        return None
    if m.group("label"):
        label, done, total = m.group("label"), int(m.group("done")), int(m.group("total"))
    else:
        label, done, total = "step", int(m.group("d2")), int(m.group("t2"))
    return (label, done, total) if 0 <= done <= total and total > 0 else None


def global_quiet() -> bool:
    """Whether ``edgekit --quiet COMMAND`` was given (the group's option)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().meta.get(QUIET_KEY))


class Progress:
    """Callable progress sink: ``Progress(quiet)(message)``. ``live``: draw bars (default: stderr is a
    terminal); ``stream``: where lines go (default stderr). ``close()`` ends the bars (the CLI
    calls it when the command ends)."""

    def __init__(self, quiet: bool = False, live: bool | None = None, stream: Any = None) -> None:
        self.quiet = quiet or global_quiet()
        self.stream = stream
        out = stream if stream is not None else sys.stderr
        self.live = (hasattr(out, "isatty") and out.isatty()) if live is None else live
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}
        ctx = click.get_current_context(silent=True)
        if ctx is not None:
            ctx.call_on_close(self.close)

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        if not self.live:
            click.echo(plain(message), file=self.stream, err=self.stream is None)
            return
        bar = self._ensure_bar()
        bar.console.print(message, markup=False, highlight=False)
        count = counted(message)
        if count is None:
            return
        label, done, total = count
        task = self._tasks.get(label)
        if task is None or bar.tasks[task].total != total:
            task = self._tasks[label] = bar.add_task(label, total=total)
        bar.update(task, completed=done)
        if all(t.finished for t in bar.tasks):
            self.close()

    def _ensure_bar(self) -> Any:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

            console = Console(file=self.stream if self.stream is not None else sys.stderr, force_terminal=True)
            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=console, transient=True)
            self._bar.start()
            self._tasks = {}
        return self._bar

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


__all__ = ["Progress", "counted", "global_quiet", "plain"]
