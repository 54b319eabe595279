"""Reader for MNIST-format IDX files (gzip'd or raw)."""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import zlib
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from edgekit.data import limits
from edgekit.data.limits import open_regular
from edgekit.errors import InputError

# magic = 0x00 0x00 <dtype code> <ndim>; MNIST uses unsigned bytes (0x08)
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path, ndim: int | None = None, used: int = 0) -> np.ndarray:
    """Read one IDX file; check its type, magic number, rank and length.

    The header's declared size is checked against what the file can hold and against
    ``limits.MAX_BYTES`` (with ``used`` bytes of the dataset already loaded) before any data
    is decompressed or allocated; gzip is streamed and never decompressed past that size.
    """
    p = Path(path)
    fh, st = open_regular(p, "IDX file")
    with fh:
        gz = fh.read(2) == b"\x1f\x8b"
        fh.seek(0)
        stream = gzip.GzipFile(fileobj=fh) if gz else fh
        read = lambda n: _read_upto(stream, n, p, gz)  # noqa: E731
        rank, dims, dtype = _header(read, p, ndim)
        expected = math.prod(dims) * dtype.itemsize  # exact: no int64 overflow for huge headers
        can_hold = (st.st_size * limits.MAX_RATIO + 1024) if gz else st.st_size - 4 - 4 * rank
        if expected > can_hold:
            raise InputError(
                f"{str(p)!r} declares {dims} ({expected:,} data bytes), more than its {st.st_size:,}-byte file can "
                "hold: the file is truncated or corrupt.")
        limits.check_budget(f"IDX file {str(p)!r} of shape {dims}", limits.decoded_bytes(dims, dtype.itemsize), used)
        body = read(expected + 1)  # one byte more: trailing data is an error too
    if len(body) != expected:
        have = f"more than {expected}" if len(body) > expected else str(len(body))
        raise InputError(
            f"{str(p)!r} holds {have} data bytes; its header {dims} needs {expected}. "
            "The file is truncated or corrupt."
        )
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _header(read: Callable[[int], bytes], p: Path, ndim: int | None) -> tuple[int, tuple[int, ...], np.dtype]:
    """``(rank, dims, dtype)`` from the magic number and the dimension words."""
    magic = read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _DTYPES:
        raise InputError(f"{str(p)!r} is not an IDX file (bad magic number {magic.hex() or 'missing'}).")
    rank = magic[3]
    if ndim is not None and rank != ndim:
        raise InputError(f"{str(p)!r} has {rank} dimensions; expected {ndim}.")
    head = read(4 * rank)
    if len(head) < 4 * rank:
        raise InputError(f"{str(p)!r} is truncated (header incomplete).")
    dims = tuple(int.from_bytes(head[4 * i : 4 + 4 * i], "big") for i in range(rank))
    return rank, dims, np.dtype(_DTYPES[magic[2]])


def _read_upto(stream: BinaryIO, n: int, p: Path, gz: bool) -> bytes:
    """Up to ``n`` more bytes, read in chunks (never a buffer of ``n`` up front)."""
    out = bytearray()
    try:
        while len(out) < n:
            chunk = stream.read(min(n - len(out), 1 << 20))
            if not chunk:
                break
            out += chunk
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        what = "readable gzip" if gz else "readable"
        raise InputError(f"IDX file {str(p)!r} is not {what}: {e}. Re-download it.") from None
    return bytes(out)


_MAX_SUMS_BYTES = 1 << 20  # an MD5SUMS file lists a few names; more is not one


def check_md5sums(folder: Path) -> None:
    """Verify files listed in ``folder/MD5SUMS`` (when that file exists); every file read,
    MD5SUMS included, must be a regular file."""
    sums = folder / "MD5SUMS"
    if not os.path.lexists(sums):
        return
    fh, st = open_regular(sums, "Checksum file")
    with fh:
        if st.st_size > _MAX_SUMS_BYTES:
            raise InputError(f"Checksum file {str(sums)!r} is {st.st_size:,} bytes, over the "
                             f"{_MAX_SUMS_BYTES:,} an MD5SUMS list may be; check the file.")
        text = fh.read(_MAX_SUMS_BYTES).decode(errors="replace")
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        digest, name = parts[0], parts[1].lstrip("*")
        f = folder / name
        if os.path.lexists(f) and _md5(f) != digest:
            raise InputError(f"{str(f)!r} does not match its MD5SUMS entry: the file is corrupt.")


def _md5(f: Path) -> str:
    """MD5 of a regular file, read in chunks."""
    fh, _ = open_regular(f, "File listed in MD5SUMS")
    h = hashlib.md5()
    with fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _find(folder: Path, prefix: str, kind: str) -> Path | None:
    for pattern in (f"{prefix}-{kind}*", f"{prefix}*{kind}*"):
        hits = sorted(folder.glob(pattern))
        if hits:
            return hits[0]
    return None


def load_idx_folder(folder: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Load the splits found in an MNIST-style folder: ``{"train": (x, y), "test": (x, y)}``.

    A folder with only one pair of files (e.g. only ``t10k-*``) yields ``{"all": (x, y)}``.
    """
    d = Path(folder)
    if not d.is_dir():
        raise InputError(f"IDX folder {str(d)!r} does not exist. Give idx:DIR with MNIST-format files.")
    check_md5sums(d)
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    used = 0  # decoded bytes so far: the cap is on the whole dataset
    for split, prefix in (("train", "train"), ("test", "t10k")):
        img, lab = _find(d, prefix, "images"), _find(d, prefix, "labels")
        if img is None and lab is None:
            continue
        if img is None or lab is None:
            raise InputError(f"{str(d)!r} has {prefix} {'labels' if img is None else 'images'} but not the matching file.")
        x = read_idx(img, ndim=3, used=used)
        used += limits.decoded_bytes(x.shape, x.itemsize)
        y = read_idx(lab, ndim=1, used=used)
        used += limits.decoded_bytes(y.shape, y.itemsize)
        if len(x) != len(y):
            raise InputError(f"{img.name} holds {len(x)} images but {lab.name} holds {len(y)} labels.")
        splits[split] = (x, y)
    if not splits:
        raise InputError(
            f"No IDX files in {str(d)!r}. Expected e.g. t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz."
        )
    if len(splits) == 1:
        return {"all": next(iter(splits.values()))}
    return splits
