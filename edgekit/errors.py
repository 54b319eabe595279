"""Typed errors. Library code raises these; the CLI maps them to one line and an exit code."""
from __future__ import annotations


class EdgekitError(Exception):
    """Base class of every error edgekit raises on purpose."""

    exit_code = 1


class UsageError(EdgekitError):
    """A wrong option, name or value given by the user (exit 2)."""

    exit_code = 2


class InputError(EdgekitError):
    """An input file or dataset that is missing, corrupt or does not fit (exit 2)."""

    exit_code = 2


class OutputExistsError(UsageError):
    """An output that exists and would be overwritten without ``force``."""


class ValidationError(EdgekitError):
    """An artifact that fails a validation tolerance."""

    def __init__(self, target: str, metric: str, value: float, limit: float, detail: str = ""):
        self.target, self.metric, self.value, self.limit = target, metric, value, limit
        msg = f"{target}: {metric} = {value:.6g} is outside the limit {limit:.6g}"
        super().__init__(msg + (f" ({detail})" if detail else ""))


class TargetsFailed(EdgekitError):
    """Export targets that could not be built, while the others were written (and validated);
    the exit code is the worst of theirs. ``failed``: target name -> its error."""

    def __init__(self, failed: dict[str, EdgekitError], built: list[str]):
        self.failed, self.built = failed, built
        self.exit_code = max(e.exit_code for e in failed.values())
        done = f"{', '.join(built)} written" if built else "nothing written"
        reasons = "; ".join(f"{n}: {str(e).rstrip('.')}" for n, e in failed.items())
        super().__init__(f"{len(failed)} of {len(failed) + len(built)} targets failed ({done}). {reasons}")


class AccuracyLost(EdgekitError):
    """A result that lost more accuracy than its limit: written for inspection, but not usable (exit 1)."""

    exit_code = 1


class GateFailed(EdgekitError):
    """One or more CI gates failed (exit 1)."""

    exit_code = 1


_OS_ADVICE = {
    "ENOSPC": ("No space left on device", "free some space or choose another --out, then run again", 1),
    "EDQUOT": ("Disk quota exceeded", "free some space or choose another --out, then run again", 1),
    "EFBIG": ("File too large for the file system or the process's file-size limit",
              "raise the limit (edgekit's --max-file-size) or choose another --out, then run again", 1),
    "EACCES": ("Permission denied", "fix the permissions of that path, or choose another one (e.g. --out)", 2),
    "EPERM": ("Operation not permitted", "fix the permissions of that path, or choose another one (e.g. --out)", 2),
    "ENOENT": ("No such file or directory", "check the path", 2),
    "EROFS": ("Read-only file system", "choose an --out on a writable file system", 2),
    "ENOTDIR": ("A part of the path is a file, not a folder", "choose another path", 2),
    "EISDIR": ("Is a folder, not a file", "give a file path", 2),
    "ENAMETOOLONG": ("File name too long", "choose a shorter path", 2),
}


def as_os_error(e: BaseException) -> OSError | None:
    """``e`` as an OSError: itself, or ENOSPC for TensorFlow's own errors of a full disk
    (checkpoint writes); None for anything else."""
    import errno

    if isinstance(e, OSError):
        return e
    if "No space left on device" in str(e):
        return OSError(errno.ENOSPC, "No space left on device")
    return None


def describe_os_error(e: OSError) -> tuple[str, int]:
    """One line for an OSError (disk full, permissions, ...) and its exit code.

    Every edgekit output is written to a temporary file and renamed into place, so a failed
    write never damages an earlier result; the message says so."""
    import errno

    name = errno.errorcode.get(e.errno or 0, "")
    what, fix, code = _OS_ADVICE.get(name, (e.strerror or type(e).__name__, "check the path and run again", 1))
    where = f" ({e.filename})" if e.filename else ""
    return f"{what}{where}: {fix}. Earlier outputs are intact (files are written to a temp file, then renamed).", code


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type name when empty), for one-line errors."""
    text = str(e).strip()
    return text.splitlines()[0][:limit] if text else type(e).__name__


class OutputLockedError(UsageError):
    """An output folder that another edgekit run is writing now (exit 2)."""
