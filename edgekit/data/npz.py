"""Reader for NumPy ``.npz`` datasets that checks every member from its headers first.

Only the arrays a dataset needs are read (``x``/``y`` or ``x_train``/``y_train``/``x_test``/
``y_test``). For each, the zip member's declared size and compression ratio and the ``.npy``
header's shape and dtype are checked (no object arrays, nothing past ``limits.MAX_BYTES``)
before any data is decompressed or allocated.
"""
from __future__ import annotations

import zipfile
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npy

from edgekit.data import limits
from edgekit.data.limits import open_regular
from edgekit.errors import InputError, first_line

KEYS = (("x_train", "y_train", "x_test", "y_test"), ("x", "y"))
_MAX_HEADER = 10_000  # numpy's own default for a .npy header
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}


def load_npz(path: str) -> dict[str, np.ndarray]:
    """The dataset arrays of ``path`` by name; InputError (one line) for anything else."""
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


def _read_members(zf: zipfile.ZipFile, path: str) -> dict[str, np.ndarray]:
    infos = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
    keys = next((k for k in KEYS if set(k) <= infos.keys()), None)
    if keys is None:
        raise InputError(f"npz file {path!r} holds {sorted(infos)}; expected arrays x and y, or x_train, y_train, "
                         "x_test, y_test.")
    arrays, used = {}, 0
    for key in keys:
        arrays[key], used = _read_member(zf, infos[key], f"npz file {path!r} member {key!r}", used)
    return arrays


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, what: str, used: int) -> tuple[np.ndarray, int]:
    """One array, after its zip entry and ``.npy`` header pass the checks; and the bytes used so far."""
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
