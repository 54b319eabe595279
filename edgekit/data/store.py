"""Where a split's pixels live, and the array-like every stage reads them through.

A :class:`PixelSource` holds one source's images in the smallest form it has them: uint8 in
memory, uint8 in a cache file on disk, or the encoded files themselves (decoded when read).
:class:`Images` is one split of it: an index into the source plus the pixel convention
(:mod:`edgekit.data.preprocess`), read a batch at a time as float32 NHWC. No stage needs a
float32 copy of a whole split: indexing (``x[:64]``, ``x[idx]``) reads only those images, and
:meth:`Images.batches` walks a split in order. ``np.asarray(x)`` still gives the whole split as
float32 (for small datasets and tests), and reading a split that way is the one place a float32
copy of it is made.

Reading the same images always gives the same float32 values, from memory, disk or files:
``uint8 / 255`` then ``(x - mean) / std``, in float32, here and in :meth:`Images.tf_batch` (the
TensorFlow version used inside ``tf.data``).
"""
from __future__ import annotations

import os
from typing import Any, Iterator, Protocol, Sequence

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

DEFAULT_BATCH = 256


class PixelSource(Protocol):
    """Images of one source, all of one shape ``(H, W, C)``, read by index."""

    shape: tuple[int, ...]  # (N, H, W, C)
    dtype: np.dtype  # uint8 (0..255), or float32 already in [0, 1]

    def read(self, index: np.ndarray) -> np.ndarray:
        """Raw pixels (``dtype``) of the images at ``index`` (int64, any order), in that order."""
        ...


class ArraySource:
    """Pixels held in a NumPy array (in memory, or a read-only ``np.memmap``). ``digest``: the
    identity of the files the pixels were decoded from, when they were (see ``load_dataset``)."""

    def __init__(self, array: np.ndarray, digest: str | None = None):
        self.array = array
        self.shape = tuple(int(d) for d in array.shape)
        self.dtype = array.dtype
        self.digest = digest

    def read(self, index: np.ndarray) -> np.ndarray:
        return np.asarray(self.array[index])

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)


class FileArraySource:
    """A C-ordered array stored raw in a file at ``offset`` (a disk cache, a stored ``.npz``
    member), read with ``os.pread`` a run of consecutive images at a time: only what is read is in
    memory (no ``np.memmap``, whose touched pages would count in the process's RSS)."""

    def __init__(self, path: str | os.PathLike, shape: tuple[int, ...], dtype: Any = np.uint8, offset: int = 0,
                 digest: str | None = None):
        self.path = os.fspath(path)
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.offset = int(offset)
        self.digest = digest
        self.item_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._fd: tuple[int, int] | None = None  # (pid, fd): reopened in a forked child

    def _fileno(self) -> int:
        if self._fd is None or self._fd[0] != os.getpid():
            self._fd = (os.getpid(), os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)))
        return self._fd[1]

    def read(self, index: np.ndarray) -> np.ndarray:
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        out = np.empty((len(index), *self.shape[1:]), self.dtype)
        if not len(index):
            return out
        if index.min() < 0 or index.max() >= self.shape[0]:
            raise IndexError(f"index out of range for {self.shape[0]} images")
        flat = out.reshape(len(index), -1).view(np.uint8)
        fd, i = self._fileno(), 0
        while i < len(index):  # one pread per run of consecutive images
            j = i + 1
            while j < len(index) and index[j] == index[j - 1] + 1 and (j - i) * self.item_bytes < (16 << 20):
                j += 1
            want = (j - i) * self.item_bytes
            buf = os.pread(fd, want, self.offset + int(index[i]) * self.item_bytes)
            if len(buf) != want:
                raise OSError(f"{self.path!r} is shorter than its {self.shape[0]:,} images: it was truncated")
            flat[i:j] = np.frombuffer(buf, np.uint8).reshape(j - i, -1)
            i = j
        return out

    def __del__(self) -> None:
        if self._fd is not None and self._fd[0] == os.getpid():
            try:
                os.close(self._fd[1])
            except OSError:
                pass


class RangeSource:
    """Images ``start .. start + n`` of another source (one split of a source cached as a whole)."""

    def __init__(self, base: Any, start: int, n: int, digest: str | None = None):
        self.base, self.start = base, int(start)
        self.shape = (int(n), *base.shape[1:])
        self.dtype = base.dtype
        self.digest = digest

    def read(self, index: np.ndarray) -> np.ndarray:
        return self.base.read(np.asarray(index, dtype=np.int64) + self.start)

    def __getattr__(self, name: str) -> Any:
        if name in ("tf_gather", "tf_one"):  # only when the base decodes in TensorFlow
            own = getattr(self.base, name)

            def shifted() -> Any:
                fn = own()
                return lambda idx: fn(idx + self.start)

            return shifted
        raise AttributeError(name)


def split_source(source: Any, start: int, n: int, digest: str | None = None) -> Any:
    """Images ``start .. start + n`` of ``source`` as a source (an array view when in memory)."""
    if isinstance(source, ArraySource):
        return ArraySource(source.array[start:start + n], digest=digest)
    if start == 0 and n == source.shape[0]:
        if digest is not None:
            source.digest = digest
        return source
    return RangeSource(source, start, n, digest=digest)


def _mean_std(spec: str | None, channels: int) -> tuple[np.ndarray, np.ndarray] | None:
    from edgekit.data.preprocess import checked_mean_std

    mean, std = checked_mean_std(spec, channels)
    if mean == (0.0,) and std == (1.0,):
        return None
    return np.asarray(mean, np.float32), np.asarray(std, np.float32)


def to_float(raw: np.ndarray, preprocess: str | None = None) -> np.ndarray:
    """float32 pixels of raw ``uint8`` (``/ 255``) or ``[0, 1]`` float images, under ``preprocess``."""
    x = raw.astype(np.float32) / np.float32(255.0) if raw.dtype == np.uint8 else raw.astype(np.float32, copy=False)
    ms = _mean_std(preprocess, x.shape[-1])
    if ms is not None:
        x = (x - ms[0]) / ms[1]
    return x.astype(np.float32, copy=False)


class Images(NDArrayOperatorsMixin):
    """One split: a view of ``index`` into ``source``, read as float32 under ``preprocess``."""

    ndim = 4
    dtype = np.dtype(np.float32)

    def __init__(self, source: PixelSource, index: np.ndarray | None = None, preprocess: str | None = None):
        self.source = source
        self.index = np.arange(source.shape[0], dtype=np.int64) if index is None else \
            np.asarray(index, dtype=np.int64).reshape(-1)
        self.preprocess = preprocess

    # -- array-like -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.source.shape[1:])

    def __len__(self) -> int:
        return len(self.index)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __getitem__(self, key: Any) -> np.ndarray:
        """float32 images at ``key`` (an int, a slice, an index array or a boolean mask)."""
        if isinstance(key, tuple):  # x[:, ...] and friends: read the images first, then index them
            first, rest = key[0], key[1:]
            if first is Ellipsis:
                return self[:][key]
            return self[first][(slice(None), *rest) if not np.isscalar(first) else rest]
        if isinstance(key, (int, np.integer)):
            return self.read(self.index[[key]])[0]
        return self.read(self.index[key])

    def read(self, source_index: np.ndarray) -> np.ndarray:
        """float32 images of the source at ``source_index``; the source is read in ascending order."""
        return to_float(self._ordered_read(np.asarray(source_index, dtype=np.int64)), self.preprocess)

    def _ordered_read(self, source_index: np.ndarray) -> np.ndarray:
        """Raw pixels at ``source_index`` in that order, read from the source in ascending order."""
        if len(source_index) == 0:
            return np.zeros((0, *self.source.shape[1:]), self.source.dtype)
        order = np.argsort(source_index, kind="stable")
        raw = self.source.read(source_index[order])
        out = np.empty_like(raw)
        out[order] = raw
        return out

    def batches(self, batch_size: int = DEFAULT_BATCH) -> Iterator[np.ndarray]:
        """float32 batches of the split in order; only one batch is in memory at a time."""
        for i in range(0, len(self), batch_size):
            yield self[i:i + batch_size]

    def __iter__(self) -> Iterator[np.ndarray]:
        for batch in self.batches():
            yield from batch

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        x = self[:]
        return x if dtype is None else x.astype(dtype)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        args = [np.asarray(a) if isinstance(a, Images) else a for a in inputs]
        return getattr(ufunc, method)(*args, **kwargs)

    def min(self, *a: Any, **kw: Any) -> Any:
        return min(float(b.min()) for b in self.batches()) if not a and not kw else np.asarray(self).min(*a, **kw)

    def max(self, *a: Any, **kw: Any) -> Any:
        return max(float(b.max()) for b in self.batches()) if not a and not kw else np.asarray(self).max(*a, **kw)

    def astype(self, dtype: Any, **kw: Any) -> np.ndarray:
        return np.asarray(self).astype(dtype, **kw)

    def reshape(self, *shape: Any) -> np.ndarray:
        return np.asarray(self).reshape(*shape)

    def transpose(self, *axes: Any) -> np.ndarray:
        return np.asarray(self).transpose(*axes)

    # -- views --------------------------------------------------------------------------------
    def take(self, positions: Sequence[int] | np.ndarray) -> Images:
        """The images at ``positions`` of this split, as a view (nothing is read)."""
        return Images(self.source, self.index[np.asarray(positions, dtype=np.int64)], self.preprocess)

    def with_preprocess(self, spec: str | None) -> Images:
        return Images(self.source, self.index, spec)

    # -- TensorFlow -----------------------------------------------------------------------------
    def tf_batch(self, raw: Any) -> Any:
        """float32 tensor of a raw batch (uint8 or [0, 1] float), the same values :meth:`read` gives."""
        from edgekit._lazy import tf

        tf_ = tf()
        x = tf_.cast(raw, tf_.float32) / 255.0 if self.source.dtype == np.uint8 else tf_.cast(raw, tf_.float32)
        ms = _mean_std(self.preprocess, self.shape[-1])
        if ms is not None:
            x = (x - tf_.constant(ms[0])) / tf_.constant(ms[1])
        return x

    def tf_one(self) -> Any:
        """``position (int64 scalar tensor) -> raw image`` when the source decodes one image at a time in
        TensorFlow (files: decoded in parallel, one per ``tf.data`` element); None otherwise."""
        own = getattr(self.source, "tf_one", None)
        return None if own is None else self._by_position(own)

    def _by_position(self, make: Any) -> Any:
        """The source's own TensorFlow reader ``make()`` (source index -> raw), taking positions of this split."""
        from edgekit._lazy import tf

        raw_fn, index = make(), tf().constant(self.index)
        return lambda pos: raw_fn(tf().gather(index, pos))

    def tf_gather(self) -> Any:
        """A function ``positions (int64 tensor) -> float32 images`` for ``tf.data.map``: in-memory
        sources are gathered in TensorFlow; a source with its own ``tf_gather()`` (source index
        tensor -> raw batch tensor, e.g. images decoded in TensorFlow) is asked for it; others are
        read through ``tf.numpy_function``."""
        from edgekit._lazy import tf

        tf_ = tf()
        shape = self.shape[1:]
        own = getattr(self.source, "tf_gather", None)
        if own is not None:
            raw_fn = self._by_position(own)
            return lambda pos: self.tf_batch(raw_fn(pos))
        if isinstance(self.source, ArraySource) and not isinstance(self.source.array, np.memmap):
            table = tf_.constant(self.source.read(self.index))  # this split's raw pixels (uint8: 1/4 of float32)
            return lambda pos: self.tf_batch(tf_.gather(table, pos))
        raw_dtype = tf_.as_dtype(self.source.dtype)

        def gather(pos: Any) -> Any:
            raw = tf_.numpy_function(lambda p: self._ordered_read(self.index[p]), [pos], raw_dtype, stateful=False)
            raw.set_shape((None, *shape))
            return self.tf_batch(raw)

        return gather


def iter_batches(x: Any, batch_size: int = DEFAULT_BATCH) -> Iterator[np.ndarray]:
    """float32 batches of ``x`` (:class:`Images` or an array), in order."""
    if isinstance(x, Images):
        yield from x.batches(batch_size)
        return
    x = np.asarray(x)
    for i in range(0, len(x), batch_size):
        yield np.asarray(x[i:i + batch_size], dtype=np.float32)
