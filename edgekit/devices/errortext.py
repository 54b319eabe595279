"""A device's error text, made fit for one line of an error message.

A device may answer with any text: 100 KB of log lines, terminal escape codes, a traceback.
The message shows a short excerpt (the first meaningful line and the last one, at most
:data:`EXCERPT_CHARS` characters, control characters replaced by ``?``); when that leaves
anything out, the whole text goes to a log file whose path the message names.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

EXCERPT_CHARS = 300
LINE_CHARS = 200
LOG_PREFIX = "edgekit-device-"


def clean(text: str) -> str:
    """``text`` with every control or non-printable character (escape codes, NUL) as ``?``."""
    return "".join(c if c.isprintable() else ("" if c in "\r\n" else "?") for c in text.replace("\t", " ")).strip()


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[:max(limit - 3, 0)].rstrip() + "..."


def _lines(text: str) -> list[str]:
    return [ln for ln in (clean(raw) for raw in text.splitlines()) if ln]


def last_line(text: str, fallback: str) -> str:
    """The last non-blank line of ``text``, cleaned and at most :data:`LINE_CHARS` long; else ``fallback``."""
    lines = _lines(text)
    return shorten(lines[-1], LINE_CHARS) if lines else fallback


def _meaningful(line: str) -> bool:
    """Not a traceback banner nor a line of punctuation only."""
    return not line.startswith("Traceback (most recent call last)") and any(c.isalnum() for c in line)


def excerpt(text: str) -> str:
    """The first meaningful line and the last line of ``text``, one line of at most EXCERPT_CHARS."""
    lines = _lines(text)
    if not lines:
        return ""
    first, last = next((ln for ln in lines if _meaningful(ln)), lines[0]), lines[-1]
    if first == last:
        return shorten(first, EXCERPT_CHARS)
    half = (EXCERPT_CHARS - 5) // 2
    return f"{shorten(first, half)} ... {shorten(last, EXCERPT_CHARS - 5 - min(len(first), half))}"


def write_log(text: str, log_dir: str | os.PathLike | None = None) -> str:
    """Write ``text`` to a new ``edgekit-device-*.log`` in ``log_dir`` (default: the temp folder); its path,
    or why it could not be written."""
    try:
        if log_dir is not None:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix=LOG_PREFIX, suffix=".log", dir=log_dir)
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as f:
            f.write(text)
    except OSError as e:
        return f"<not saved: {clean(e.strerror or str(e))}>"
    return path


def summarize(text: str, log_dir: str | os.PathLike | None = None, fallback: str = "no error text") -> str:
    """One line for a device's error ``text``; a long or multi-line text is saved whole with
    :func:`write_log` and the line names that file."""
    lines = _lines(text)
    if not lines:
        return fallback
    whole = " / ".join(lines)
    if len(whole) <= EXCERPT_CHARS:  # nothing is left out
        return whole
    short = excerpt(text)
    n = len(text.splitlines())
    size = f"{len(text):,} characters in {n:,} line{'s' if n != 1 else ''}"
    return f"{short} [{size}; full text: {write_log(text, log_dir)}]"
