"""One writer per output folder: an ``fcntl.flock`` on ``OUT/.edgekit.lock``.

Every command that writes an output folder holds its lock while it runs; a second writer
is refused at once with one line naming the holder (pid and command). The kernel drops
the lock when the holder exits, crashed or killed included, so a lock is never stale. The
file is removed on a normal exit; a killed run's file stays and is taken over by the next
run. Readers (inspect, report, gate) take no lock. Within one process the lock is
re-entrant (``edgekit run`` holds the run folder, then each stage folder).
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from edgekit.errors import OutputLockedError, UsageError

LOCK_FILE = ".edgekit.lock"
_held: dict[str, list[int]] = {}  # real path of a folder -> [fd, depth] of the locks this process holds


@contextlib.contextmanager
def out_lock(out: str | os.PathLike, command: str) -> Iterator[Path]:
    """Hold the writer's lock of folder ``out`` (created when missing) for ``command``.

    OutputLockedError at once when another process holds it. On exit the lock is released,
    and the folders this call created are removed again when nothing was written into them.
    """
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {str(folder)!r} is a file, not a folder. Choose a folder path.")
    created = _missing(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(folder)
    if key in _held:  # this process holds it already
        _held[key][1] += 1
        try:
            yield folder
        finally:
            _held[key][1] -= 1
        return
    try:
        fd = _acquire(folder, command)
    except BaseException:
        _remove_empty(created)
        raise
    _held[key] = [fd, 1]
    try:
        yield folder
    finally:
        del _held[key]
        _release(folder, fd)
        _remove_empty(created)


def locked_out(command: str, param: str = "out") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command whose keyword ``param`` is its output folder: run it under :func:`out_lock`
    (no lock when the folder is not given)."""
    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def wrapper(*args: Any, **kw: Any) -> Any:
            if kw.get(param) is None:
                return f(*args, **kw)
            with out_lock(kw[param], command):
                return f(*args, **kw)
        return wrapper
    return decorate


def holder(out: str | os.PathLike) -> dict[str, Any] | None:
    """``{"pid", "command"}`` of the process writing ``out`` now, or None when no one is."""
    path = Path(out) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(fd)
    finally:
        os.close(fd)
    return None


def _acquire(folder: Path, command: str) -> int:
    """An open fd of ``folder/LOCK_FILE`` holding its exclusive lock, with this process written into it."""
    path = folder / LOCK_FILE
    for _ in range(10):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = _read_holder(fd)
            if not _take_from_dying(fd, who):
                os.close(fd)
                raise OutputLockedError(
                    f"{str(folder)!r} is being written by another edgekit run (pid {who.get('pid', '?')}, "
                    f"{who.get('command', '?')}); wait for it to finish or choose another --out.") from None
        if _same_file(fd, path):
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps({"pid": os.getpid(), "command": command}) + "\n").encode(), 0)
            return fd
        os.close(fd)  # a finishing run removed the file we opened: lock the new one
    raise OutputLockedError(f"{str(folder)!r} is being written by other edgekit runs; wait for them or choose "
                            "another --out.")


def _take_from_dying(fd: int, who: dict[str, Any]) -> bool:
    """Lock ``fd`` once its holder, being killed (e.g. the command child of an ``edgekit`` that got
    SIGKILL), has ended: the kernel drops the lock when the holder's memory is torn down (ms)."""
    pid = who.get("pid")
    if not isinstance(pid, int) or not process_dying(pid):
        return False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            time.sleep(0.01)
    return False


def process_dying(pid: int) -> bool:
    """Whether ``pid`` will write nothing more: a zombie (an orphan that a PID 1 which never reaps
    keeps), or a process with SIGKILL pending (still tearing down its memory). False where /proc
    cannot tell."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            fields = dict(ln.split(":", 1) for ln in f if ":" in ln)
        pending = int(fields.get("SigPnd", "0"), 16) | int(fields.get("ShdPnd", "0"), 16)
    except (OSError, ValueError):
        return False
    return fields.get("State", "").strip().startswith("Z") or bool(pending >> (signal.SIGKILL - 1) & 1)


def _release(folder: Path, fd: int) -> None:
    """Remove the lock file (still holding the lock, so no one holds a removed file) and unlock."""
    try:
        if _same_file(fd, folder / LOCK_FILE):
            (folder / LOCK_FILE).unlink()
    except OSError:
        pass
    finally:
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace") or "{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _missing(folder: Path) -> list[Path]:
    """``folder`` and its missing parents, the deepest first: what ``mkdir(parents=True)`` creates."""
    out, p = [], folder
    while not p.exists() and p != p.parent:
        out.append(p)
        p = p.parent
    return out


def _remove_empty(created: list[Path]) -> None:
    """Remove the folders this process created when they are still empty (deepest first)."""
    for p in created:
        try:
            p.rmdir()
        except OSError:
            break
