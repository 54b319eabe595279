"""Decoded-pixel caches for streamed sources (``cache=memory|disk|none|auto``).

A streamed source (image files, TFRecords, a compressed ``.npz`` member) can be decoded once:

* ``memory``: into one uint8 array (decoded in parallel through ``tf.data``);
* ``disk``: into a raw uint8 file ``$EDGEKIT_CACHE/<key>.u8`` (default
  ``~/.cache/edgekit/datasets``), written atomically (temporary file, fsync, rename) and read back
  with ``os.pread`` a batch at a time (:class:`~edgekit.data.store.FileArraySource`). The key is a
  hash of the source's identity (its files' bytes and labels, the size and channels) and of the
  decoder version, so the next run with the same data reuses the file without decoding;
* ``none``: every read decodes again;
* ``auto`` (the default): memory when the uint8 pixels take at most min(1 GiB, available RAM / 4),
  else disk when the cache folder's file system has room, else none.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgekit.data.store import ArraySource, FileArraySource
from edgekit.errors import InputError, UsageError

MODES = ("auto", "memory", "disk", "none")
MEMORY_MAX = 1 << 30  # auto: in memory up to this many uint8 bytes (and a quarter of the available RAM)
DISK_MARGIN = 256 << 20  # auto: disk only when this much is left free after the cache
BATCH = 64
builds = 0  # caches decoded by this process (tests check that a second load reuses the disk cache)


def parse_cache(value: str | None) -> str:
    mode = (value or "auto").strip().lower()
    if mode not in MODES:
        raise UsageError(f"cache must be one of {', '.join(MODES)}. Received: cache={value!r}.")
    return mode


def cache_root() -> Path:
    """``$EDGEKIT_CACHE`` or ``~/.cache/edgekit/datasets``."""
    env = os.environ.get("EDGEKIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgekit" / "datasets"


def _available_ram() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # no psutil, or no /proc: assume little
        return 4 << 30


def choose(mode: str, nbytes: int, root: Path | None = None) -> str:
    """The cache a source of ``nbytes`` uint8 bytes gets under ``mode`` (``auto`` decided here)."""
    if mode != "auto":
        return mode
    if nbytes <= min(MEMORY_MAX, _available_ram() // 4):
        return "memory"
    root = root or cache_root()
    probe = next((p for p in (root, *root.parents) if p.exists()), None)
    try:
        free = shutil.disk_usage(probe).free if probe is not None else 0
    except OSError:
        free = 0
    return "disk" if free >= nbytes + DISK_MARGIN else "none"


def cache_key(*parts: Any) -> str:
    from edgekit.data.decode import VERSION

    h = hashlib.sha256(VERSION.encode())
    for p in parts:
        h.update(repr(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def decoded_batches(source: Any, batch: int = BATCH) -> Iterator[np.ndarray]:
    """The uint8 images of ``source`` in order, a batch at a time, decoded in parallel in
    ``tf.data`` when the source has a ``tf_gather``; an InputError names a file that fails."""
    n = source.shape[0]
    own = getattr(source, "tf_gather", None)
    if own is None:
        for i in range(0, n, batch):
            yield source.read(np.arange(i, min(n, i + batch), dtype=np.int64))
        return
    from edgekit._lazy import tf

    tf_ = tf()
    one = getattr(source, "tf_one", None)
    if one is not None:  # one image per element: decoded in parallel across the pool
        ds = tf_.data.Dataset.range(n).map(one(), num_parallel_calls=tf_.data.AUTOTUNE,
                                           deterministic=True).batch(batch).prefetch(2)
    else:
        ds = tf_.data.Dataset.range(n).batch(batch).map(own(), num_parallel_calls=tf_.data.AUTOTUNE,
                                                        deterministic=True).prefetch(2)
    done = 0
    try:
        for b in ds.as_numpy_iterator():
            yield b
            done += len(b)
    except tf_.errors.OpError as e:
        explain = getattr(source, "explain", None)
        if explain is not None:
            explain(np.arange(done, n, dtype=np.int64), e)  # raises an InputError naming the file
        raise InputError(f"Decoding the dataset failed: {str(e).splitlines()[0]}") from None


def to_memory(source: Any, digest: str | None) -> ArraySource:
    """``source`` decoded once into a uint8 array."""
    global builds
    out = np.empty(source.shape, np.uint8)
    i = 0
    for b in decoded_batches(source):
        out[i:i + len(b)] = b
        i += len(b)
    builds += 1
    return ArraySource(out, digest=digest)


def write_atomic(path: Path, batches: Iterator[np.ndarray]) -> None:
    """uint8 ``batches`` written one after another to ``path``: a temporary file beside it, synced,
    then renamed (a run stopped half way leaves no partial cache)."""
    tmp = path.parent / f".{path.stem}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as fh:
            for b in batches:
                fh.write(np.ascontiguousarray(b, np.uint8).tobytes())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def to_disk(source: Any, key: str, digest: str | None, root: Path | None = None) -> FileArraySource:
    """``source`` decoded once into ``root/<key>.u8`` (reused when it is there with the right size)."""
    global builds
    root = root or cache_root()
    path = root / f"{key}.u8"
    need = int(np.prod(source.shape, dtype=np.int64))
    if path.is_file() and path.stat().st_size == need:
        return FileArraySource(path, source.shape, np.uint8, digest=digest)
    try:
        root.mkdir(parents=True, exist_ok=True)
        write_atomic(path, decoded_batches(source))
    except OSError as e:
        raise InputError(f"Cannot write the dataset cache {str(path)!r}: {e.strerror or e}; set EDGEKIT_CACHE "
                         "to a folder with room, or pass cache=none.") from None
    builds += 1
    return FileArraySource(path, source.shape, np.uint8, digest=digest)


def cached(source: Any, mode: str, key_parts: tuple, what: str) -> tuple[Any, str]:
    """``(source to read, note)``: ``source`` behind the cache ``mode`` asks for (see the module);
    the note is one line saying which cache was used."""
    nbytes = int(np.prod(source.shape, dtype=np.int64))
    chosen = choose(mode, nbytes)
    digest = getattr(source, "digest", None)
    how = f"{nbytes / 2**20:,.1f} MiB uint8{', chosen by cache=auto' if mode == 'auto' else ''}"
    if chosen == "memory":
        return to_memory(source, digest), f"{what}: cache=memory ({how})."
    if chosen == "disk":
        src = to_disk(source, cache_key(*key_parts), digest)
        return src, f"{what}: cache=disk at {src.path} ({how})."
    return source, f"{what}: cache=none, images decoded on every read ({how})."
