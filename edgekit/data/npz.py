"""Reader for NumPy ``.npz`` datasets that checks every member from its headers first.

Only the arrays a dataset needs are read (``x``/``y`` or ``x_train``/``y_train``/``x_test``/
``y_test``). For each, the zip member's declared size and compression ratio and the ``.npy``
header's shape and dtype are checked (no object arrays) before any data is decompressed or
allocated.

uint8 image members (``x``, ``x_train``, ``x_test``) are not loaded: a stored member (``np.savez``)
is read in place, by its data offset in the file (:class:`~edgekit.data.store.FileArraySource`,
``os.pread``); a deflated one (``np.savez_compressed``) is decompressed once, streamed, into memory
or the disk cache by the size rule of :mod:`edgekit.data.cache`. Everything else (labels, float
images) is loaded into memory within ``limits.MAX_BYTES``.
"""
from __future__ import annotations

import os
import struct
import zipfile
from typing import Any, BinaryIO

import numpy as np
from numpy.lib import format as npy

from edgekit.data import limits
from edgekit.data.limits import open_regular
from edgekit.errors import InputError, first_line

KEYS = (("x_train", "y_train", "x_test", "y_test"), ("x", "y"))
_MAX_HEADER = 10_000  # numpy's own default for a .npy header
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}


IMAGE_KEYS = ("x", "x_train", "x_test")


def load_npz(path: str) -> dict[str, Any]:
    """The dataset arrays of ``path`` by name (uint8 images as a PixelSource); InputError (one line)
    for anything else."""
    fh, _ = open_regular(path, "npz file")
    with fh:
        if fh.read(2) != b"PK":
            raise InputError(f"{path!r} is not a readable .npz file (not a zip archive).")
        fh.seek(0)
        try:
            with zipfile.ZipFile(fh) as zf:
                return _read_members(zf, path)
        except InputError:
            raise
        except Exception as e:  # zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError ...
            raise InputError(f"{path!r} is not a readable .npz file: {first_line(e)}") from None


def _read_members(zf: zipfile.ZipFile, path: str) -> dict[str, Any]:
    infos = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
    keys = next((k for k in KEYS if set(k) <= infos.keys()), None)
    if keys is None:
        raise InputError(f"npz file {path!r} holds {sorted(infos)}; expected arrays x and y, or x_train, y_train, "
                         "x_test, y_test.")
    arrays, used = {}, 0
    for key in keys:
        arrays[key], used = _read_member(zf, infos[key], f"npz file {path!r} member {key!r}", used,
                                         path if key in IMAGE_KEYS else None)
    return arrays


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, what: str, used: int,
                 path: str | None = None) -> tuple[Any, int]:
    """One array, after its zip entry and ``.npy`` header pass the checks; and the bytes used so far.
    With ``path`` (an image member), a uint8 C-ordered array comes back as a PixelSource."""
    if info.compress_type not in _METHODS:
        raise InputError(f"{what} uses zip compression method {info.compress_type}; edgekit reads stored or "
                         "deflate members (np.savez, np.savez_compressed). Re-save the file with NumPy.")
    if info.file_size > info.compress_size * limits.MAX_RATIO + 1024:
        raise InputError(f"{what} declares {info.file_size:,} bytes from {info.compress_size:,} compressed, more "
                         "than deflate can expand to: the file is corrupt or hostile.")
    with zf.open(info) as fp:
        shape, fortran, dtype = _npy_header(fp, what)
        header_len = fp.tell()
    if dtype.hasobject:
        raise InputError(f"{what} holds Python objects (dtype {dtype}), which cannot be loaded without pickle; "
                         "save plain numeric arrays.")
    need = header_len + int(np.prod(shape, dtype=object)) * dtype.itemsize
    if need != info.file_size:
        raise InputError(f"{what} is {info.file_size:,} bytes but its header {shape} {dtype} needs {need:,}: "
                         "the file is truncated or corrupt.")
    if path is not None and dtype == np.uint8 and not fortran and len(shape) in (3, 4) and np.prod(shape) > 0:
        if info.compress_type != zipfile.ZIP_STORED:  # a deflate stream is trusted up to the in-memory budget
            used = limits.check_budget(f"{what} of shape {shape}", limits.decoded_bytes(shape, 1), used)
        return _image_source(zf, info, path, shape, header_len), used
    used = limits.check_budget(f"{what} of shape {shape}", limits.decoded_bytes(shape, dtype.itemsize), used)
    with zf.open(info) as fp:  # read_array allocates what the header (checked above) declares
        return npy.read_array(fp, allow_pickle=False, max_header_size=_MAX_HEADER), used


def _npy_header(fp: BinaryIO, what: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of a ``.npy`` stream, read from its header only."""
    try:
        version = npy.read_magic(fp)
        if version == (1, 0):
            return npy.read_array_header_1_0(fp, max_header_size=_MAX_HEADER)
        if version == (2, 0):
            return npy.read_array_header_2_0(fp, max_header_size=_MAX_HEADER)
    except ValueError as e:
        raise InputError(f"{what} is not a readable .npy array: {first_line(e)}") from None
    raise InputError(f"{what} is .npy format {version[0]}.{version[1]}; edgekit reads 1.0 and 2.0. "
                     "Re-save it with np.savez.")


def _image_source(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, shape: tuple[int, ...],
                  header_len: int) -> Any:
    """A uint8 image member as a PixelSource: read in place when stored, else decompressed once."""
    from edgekit.data.store import ArraySource, FileArraySource

    shape4 = tuple(shape) if len(shape) == 4 else (*shape, 1)
    if info.compress_type == zipfile.ZIP_STORED:
        fh = zf.fp
        fh.seek(info.header_offset)
        local = fh.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise InputError(f"npz file {path!r} member {info.filename!r} has a bad local header: the file is corrupt.")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        start = info.header_offset + 30 + name_len + extra_len + header_len
        if start + int(np.prod(shape)) > os.fstat(fh.fileno()).st_size:
            raise InputError(f"npz file {path!r} member {info.filename!r} is truncated.")
        return FileArraySource(os.path.abspath(path), shape4, np.uint8, offset=start)
    from edgekit.data import cache

    nbytes = int(np.prod(shape))
    chosen = cache.choose("auto", nbytes)
    item = nbytes // shape4[0]

    def batches():
        with zf.open(info) as fp:
            fp.read(header_len)
            for i in range(0, shape4[0], 256):
                n = min(256, shape4[0] - i)
                buf = fp.read(n * item)
                if len(buf) != n * item:
                    raise InputError(f"npz file {path!r} member {info.filename!r} is truncated.")
                yield np.frombuffer(buf, np.uint8).reshape(n, *shape4[1:])

    if chosen in ("memory", "none"):
        out = np.empty(shape4, np.uint8)
        i = 0
        for b in batches():
            out[i:i + len(b)] = b
            i += len(b)
        return ArraySource(out)
    st = os.stat(path)
    key = cache.cache_key("npz", os.path.abspath(path), st.st_size, st.st_mtime_ns, info.filename, info.CRC, shape)
    root = cache.cache_root()
    dest = root / f"{key}.u8"
    if not (dest.is_file() and dest.stat().st_size == nbytes):
        root.mkdir(parents=True, exist_ok=True)
        cache.write_atomic(dest, batches())
        cache.builds += 1
    return FileArraySource(dest, shape4, np.uint8)
