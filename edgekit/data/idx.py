"""Reader for MNIST-format IDX files (gzip'd or raw)."""
from __future__ import annotations

import gzip
import hashlib
import io
import math
import zlib
from pathlib import Path

import numpy as np

from edgekit.errors import InputError

# magic = 0x00 0x00 <dtype code> <ndim>; MNIST uses unsigned bytes (0x08)
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# deflate expands at most ~1032x; a gzip'd IDX file declaring more data than that is corrupt
_MAX_GZIP_RATIO = 1100


def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """Read one IDX file; check its magic number, rank and length.

    The header's declared size is checked against what the file can hold before any data
    is decompressed or allocated, so a corrupt header cannot make this read gigabytes.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"IDX file {str(p)!r} does not exist.") from None
    except OSError as e:
        raise InputError(f"IDX file {str(p)!r} is not readable: {e.strerror or e}.") from None
    gz = data[:2] == b"\x1f\x8b"
    if gz:
        stream = gzip.GzipFile(fileobj=io.BytesIO(data))
        read = lambda n: _gunzip(stream, n, p)  # noqa: E731
    else:
        read = io.BytesIO(data).read
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
    dtype = np.dtype(_DTYPES[magic[2]])
    expected = math.prod(dims) * dtype.itemsize  # exact: no int64 overflow for huge headers
    can_hold = (len(data) * _MAX_GZIP_RATIO + 1024) if gz else len(data) - 4 - 4 * rank
    if expected > can_hold:
        raise InputError(
            f"{str(p)!r} declares {dims} ({expected:,} data bytes), more than its {len(data):,}-byte file can hold: "
            "the file is truncated or corrupt."
        )
    body = read(expected + 1)  # one byte more: trailing data is an error too
    if len(body) != expected:
        have = f"more than {expected}" if len(body) > expected else str(len(body))
        raise InputError(
            f"{str(p)!r} holds {have} data bytes; its header {dims} needs {expected}. "
            "The file is truncated or corrupt."
        )
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _gunzip(stream: gzip.GzipFile, n: int, p: Path) -> bytes:
    """Up to ``n`` more decompressed bytes, read in chunks (never a buffer of ``n`` up front)."""
    out = bytearray()
    try:
        while len(out) < n:
            chunk = stream.read(min(n - len(out), 1 << 20))
            if not chunk:
                break
            out += chunk
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise InputError(f"IDX file {str(p)!r} is not readable gzip: {e}. Re-download it.") from None
    return bytes(out)


def check_md5sums(folder: Path) -> None:
    """Verify files listed in ``folder/MD5SUMS`` (when that file exists)."""
    sums = folder / "MD5SUMS"
    if not sums.is_file():
        return
    for line in sums.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        digest, name = parts[0], parts[1].lstrip("*")
        f = folder / name
        if f.is_file() and hashlib.md5(f.read_bytes()).hexdigest() != digest:
            raise InputError(f"{str(f)!r} does not match its MD5SUMS entry: the file is corrupt.")


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
    for split, prefix in (("train", "train"), ("test", "t10k")):
        img, lab = _find(d, prefix, "images"), _find(d, prefix, "labels")
        if img is None and lab is None:
            continue
        if img is None or lab is None:
            raise InputError(f"{str(d)!r} has {prefix} {'labels' if img is None else 'images'} but not the matching file.")
        x, y = read_idx(img, ndim=3), read_idx(lab, ndim=1)
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
