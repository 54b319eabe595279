"""Folders sent between processes or machines: packed as an uncompressed tar, unpacked with the
tar "data" filter (regular files and folders inside the destination only)."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

MAX_PACKED = 2 << 30  # a folder larger than this is refused on the way back


def pack(path: Path, arcname: str = ".") -> bytes:
    """``path`` (a file or a folder) as tar bytes, under ``arcname``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(path, arcname=arcname)
    return buf.getvalue()


def unpack(data: bytes, dest: Path) -> None:
    """Extract tar bytes :func:`pack` wrote into ``dest``."""
    if len(data) > MAX_PACKED:
        raise ValueError(f"a folder came back with {len(data):,} bytes, more than {MAX_PACKED:,}")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(dest, filter="data")
