"""Limits for untrusted dataset files, in one place: what a dataset may cost in memory, and
which files may be opened at all.

Every reader checks a file's type with ``os.stat`` before opening it (a FIFO, device or
socket is refused without an ``open``, so nothing can block or stream forever), and checks
the size a header declares against :data:`MAX_BYTES` before allocating or decompressing.
Readers look these names up at call time (``limits.MAX_BYTES``), so tests can lower them.
"""
from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import BinaryIO

from edgekit.errors import InputError

MAX_BYTES = 2 << 30  # a decoded dataset, all its arrays together, counted at >= 4 bytes (float32) per value
MAX_CLASSES = 100_000  # labels are class indices 0..MAX_CLASSES-1
MAX_IMAGE_PIXELS = 89_478_485  # one image file (PIL's own default: 2^28 / 3 pixels, 0.25 GiB as RGB)
MAX_RATIO = 1100  # deflate expands at most ~1032x; a gzip/zip member declaring more is not a real file

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"),
          (stat.S_ISREG, "a regular file"))


def file_kind(mode: int) -> str:
    """What a file is, in words (``a FIFO (named pipe)``, ``a character device`` ...)."""
    return next((name for test, name in _KINDS if test(mode)), "of an unknown kind")


def decoded_bytes(shape: tuple[int, ...], itemsize: int) -> int:
    """Memory an array of ``shape`` costs once decoded: at least float32 per value (exact, no overflow)."""
    return math.prod(int(d) for d in shape) * max(4, int(itemsize))


def check_budget(what: str, need: int, used: int = 0) -> int:
    """``used + need`` when within :data:`MAX_BYTES`; an InputError naming ``what`` otherwise."""
    if used + need > MAX_BYTES:
        raise InputError(
            f"{what} needs {need / 2**20:,.0f} MiB decoded (float32){' more' if used else ''}, over the "
            f"{MAX_BYTES / 2**20:,.0f} MiB edgekit loads into memory. Use a smaller dataset.")
    return used + need


def check_regular(path: str | Path, what: str) -> os.stat_result:
    """``os.stat`` of ``path`` (following links) when it is a regular file; InputError otherwise."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{what} {str(path)!r} does not exist.") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{what} {str(path)!r} is not readable: {getattr(e, 'strerror', None) or e}.") from None
    if not stat.S_ISREG(st.st_mode):
        link = f" (a link to {os.path.realpath(path)!r})" if os.path.islink(path) else ""
        raise InputError(f"{what} {str(path)!r}{link} is {file_kind(st.st_mode)}, not a regular file; "
                         "give a regular file.")
    return st


def open_regular(path: str | Path, what: str) -> tuple[BinaryIO, os.stat_result]:
    """``(file, stat)`` of a regular file opened for reading. The type is checked before ``open``,
    and again on the open descriptor (``O_NONBLOCK``: a file swapped for a FIFO cannot block)."""
    check_regular(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise InputError(f"{what} {str(path)!r} is not readable: {e.strerror or e}.") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise InputError(f"{what} {str(path)!r} is {file_kind(st.st_mode)}, not a regular file; give a regular file.")
    return os.fdopen(fd, "rb"), st


def inside(path: Path, root: Path, what: str) -> Path:
    """``path`` resolved, when it stays inside the resolved ``root``; InputError when a symlink
    leads out of the dataset folder (or loops)."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError) as e:
        raise InputError(f"{what} {str(path)!r} cannot be resolved: {getattr(e, 'strerror', None) or e}.") from None
    if real != root and root not in real.parents:
        raise InputError(f"{what} {str(path)!r} is a symlink to {str(real)!r}, outside the dataset folder "
                         f"{str(root)!r}; copy the file into the folder instead.")
    return real
