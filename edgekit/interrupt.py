"""Ctrl-C and SIGTERM in a command: stop at the next safe point, or at once where that is safe.

Raising KeyboardInterrupt at an arbitrary bytecode is not safe everywhere: converters catch
every exception (tf2onnx has bare ``except:`` clauses, so the stop is lost) and a raise
inside TensorFlow's graph tracing has crashed the process (SIGSEGV, measured here). So
within :func:`raising_signals` (every CLI command) the first SIGINT/SIGTERM is recorded
and :func:`checkpoint`, called between targets and stages, raises it; inside
:func:`interruptible` blocks (Keras fit loops, which handle it) it raises at once. A second
signal always raises at once.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Any, Callable, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_pending: list[int] = []
_immediate: list[bool] = [False]


def _handler(signum, frame) -> None:
    _pending.append(signum)
    if _immediate[0] or len(_pending) > 1:
        raise KeyboardInterrupt
    print(f"{signal.Signals(signum).name} received: stopping after the current step "
          "(send it again to stop at once).", file=sys.stderr, flush=True)


@contextlib.contextmanager
def handling(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """Within this block ``handler`` receives SIGINT and SIGTERM; the previous handlers come
    back on exit. Outside the main thread (where Python cannot handle signals) a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def raising_signals() -> Iterator[None]:
    """Within this block SIGINT and SIGTERM are recorded and stop the work at a safe point."""
    _pending.clear()
    with handling(_handler):
        yield


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within this block a signal raises KeyboardInterrupt at once (code that handles it)."""
    checkpoint()
    before, _immediate[0] = _immediate[0], True
    try:
        yield
    finally:
        _immediate[0] = before


def pending() -> int | None:
    """The first signal received in the current command, if any."""
    return _pending[0] if _pending else None


def checkpoint() -> None:
    """Raise KeyboardInterrupt when a signal arrived since the command started."""
    if _pending:
        raise KeyboardInterrupt
