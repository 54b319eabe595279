"""Reader for MNIST-format IDX files (gzip'd or raw)."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

from edgekit.errors import InputError

# magic = 0x00 0x00 <dtype code> <ndim>; MNIST uses unsigned bytes (0x08)
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """Read one IDX file; check its magic number, rank and length."""
    p = Path(path)
    try:
        raw = p.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise InputError(f"IDX file {str(p)!r} does not exist.") from None
    except (OSError, EOFError) as e:
        raise InputError(f"IDX file {str(p)!r} is not readable gzip: {e}. Re-download it.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise InputError(f"{str(p)!r} is not an IDX file (bad magic number {raw[:4].hex()}).")
    rank = raw[3]
    if ndim is not None and rank != ndim:
        raise InputError(f"{str(p)!r} has {rank} dimensions; expected {ndim}.")
    header = 4 + 4 * rank
    if len(raw) < header:
        raise InputError(f"{str(p)!r} is truncated (header incomplete).")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise InputError(
            f"{str(p)!r} holds {len(raw) - header} data bytes; its header {dims} needs {expected}. "
            "The file is truncated or corrupt."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def check_md5sums(folder: Path) -> None:
    """Verify files listed in ``folder/MD5SUMS`` (when that file exists)."""
    sums = folder / "MD5SUMS"
    if not sums.is_file():
        return
    for line in sums.read_text().splitlines():
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
