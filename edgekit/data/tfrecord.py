"""TFRecord datasets (``tfrecord:GLOB[,size=HxW][,channels=1|3][,cache=auto]``), streamed.

Each record is a ``tf.train.Example`` with

* ``image``: bytes, one encoded JPEG or PNG (also accepted under the TF-slim/TFDS name
  ``image/encoded``);
* ``label``: int64, the class index 0 .. ``limits.MAX_CLASSES - 1`` (also ``image/class/label``).

The files matching GLOB (sorted) form one split (``all``). One streaming pass reads the record
framing (offset and length of every record; a file cut short is an error), hashes the records'
bytes (the dataset's identity) and parses the labels in batches; the first image is probed for
the size and colour. Images decode in the ``tf.data`` pipeline (:func:`edgekit.data.decode.tf_decode`:
the records are read with ``os.pread``, parsed and decoded in TensorFlow), or once into a cache
(:mod:`edgekit.data.cache`). The record CRCs are not checked (a corrupt record fails to parse or
to decode, with an error naming the file).
"""
from __future__ import annotations

import glob
import hashlib
import os
import struct
from typing import Any

import numpy as np

from edgekit.data import limits
from edgekit.data.decode import DecodedSource
from edgekit.data.limits import open_regular
from edgekit.errors import InputError, UsageError

OPTIONS = ("size", "channels", "cache")
NAMES = (("image", "label"), ("image/encoded", "image/class/label"))  # (image key, label key)
_BATCH = 512  # records per label-parsing batch


class TFRecordSource(DecodedSource):
    """Images stored encoded in TFRecord files, read by record offset and decoded in TensorFlow."""

    dtype = np.dtype(np.uint8)

    def __init__(self, files: list[str], file_id: np.ndarray, offset: np.ndarray, length: np.ndarray,
                 image_key: str, hw: tuple[int, int], channels: int, digest: str | None = None):
        self.files = list(files)
        self.file_id, self.offset, self.length = file_id, offset, length
        self.image_key = image_key
        self.hw, self.channels = (int(hw[0]), int(hw[1])), int(channels)
        self.shape = (len(offset), *self.hw, self.channels)
        self.digest = digest
        self._fds: dict[int, int] = {}
        self._pid = os.getpid()

    def records(self, index: np.ndarray) -> np.ndarray:
        """The serialized Examples at ``index`` (an object array of bytes)."""
        if self._pid != os.getpid():
            self._fds, self._pid = {}, os.getpid()
        out = np.empty(len(index), dtype=object)
        for k, i in enumerate(np.asarray(index, dtype=np.int64)):
            f = int(self.file_id[i])
            if f not in self._fds:
                self._fds[f] = os.open(self.files[f], os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            out[k] = os.pread(self._fds[f], int(self.length[i]), int(self.offset[i]))
        return out

    def tf_gather(self) -> Any:
        """``source index (int64 tensor) -> uint8 (n, h, w, c)``: records read, parsed and decoded."""
        from edgekit._lazy import tf
        from edgekit.data.decode import tf_decode

        tf_ = tf()
        hw, c, key = self.hw, self.channels, self.image_key
        spec = {key: tf_.io.FixedLenFeature([], tf_.string)}

        def gather(idx: Any) -> Any:
            blobs = tf_.numpy_function(self.records, [idx], tf_.string, stateful=False)
            blobs.set_shape([None])
            images = tf_.io.parse_example(blobs, spec)[key]
            return tf_.map_fn(lambda b: tf_decode(b, tf_.constant(True), hw, c), images,
                              fn_output_signature=tf_.TensorSpec((*hw, c), tf_.uint8), parallel_iterations=16)

        return gather

    def undecodable(self, i: int, why: str) -> str:
        return (f"TFRecord file {self.files[int(self.file_id[i])]!r}: the image of record at byte "
                f"{int(self.offset[i]) - 12:,} does not decode ({why}); rewrite the file with JPEG or PNG images.")


def _framing(path: str, on_batch: Any) -> None:
    """Walk ``path``'s records (8-byte length, 4-byte length CRC, data, 4-byte data CRC), calling
    ``on_batch(offsets, records)`` every :data:`_BATCH` records; InputError when it is cut short."""
    fh, st = open_regular(path, "TFRecord file")
    offsets: list[int] = []
    recs: list[bytes] = []
    pos = 0
    with fh:
        while True:
            head = fh.read(12)
            if not head:
                break
            if len(head) < 12:
                raise InputError(f"TFRecord file {path!r} is truncated (a record header is cut at byte {pos:,}); "
                                 "re-copy or rewrite the file.")
            (n,) = struct.unpack("<Q", head[:8])
            if n > st.st_size - pos - 16:
                raise InputError(f"TFRecord file {path!r} is truncated or corrupt (the record at byte {pos:,} "
                                 f"declares {n:,} bytes, more than the file holds); re-copy or rewrite the file.")
            data = fh.read(n)
            crc = fh.read(4)
            if len(data) != n or len(crc) != 4:
                raise InputError(f"TFRecord file {path!r} is truncated (the record at byte {pos:,} is cut short); "
                                 "re-copy or rewrite the file.")
            offsets.append(pos + 12)
            recs.append(data)
            pos += 16 + n
            if len(recs) >= _BATCH:
                on_batch(offsets, recs)
                offsets, recs = [], []
    if recs:
        on_batch(offsets, recs)


def _keys(record: bytes, path: str) -> tuple[str, str]:
    """The (image, label) feature names the first record uses."""
    from edgekit._lazy import tf

    try:
        ex = tf().train.Example.FromString(record)
    except Exception:
        raise InputError(f"TFRecord file {path!r}: the first record is not a tf.train.Example; write records with "
                         "features image (bytes) and label (int64).") from None
    have = set(ex.features.feature)
    for image_key, label_key in NAMES:
        if image_key in have and label_key in have:
            return image_key, label_key
    raise InputError(f"TFRecord file {path!r}: records hold features {sorted(have)}; edgekit needs image (bytes, "
                     "JPEG/PNG) and label (int64), or image/encoded and image/class/label.")


def load_tfrecords(arg: str) -> Any:
    """Raw splits (``{"all": (source, labels)}``, with notes) of ``tfrecord:GLOB[,options]``."""
    from edgekit._lazy import tf
    from edgekit.data.cache import cached, parse_cache
    from edgekit.data.decode import probe
    from edgekit.data.images import Splits, parse_channels, parse_size, split_options
    from edgekit.data.store import split_source

    pattern, opts = split_options(arg, OPTIONS, "tfrecord")
    if not pattern:
        raise UsageError("Dataset 'tfrecord' needs files: tfrecord:GLOB, e.g. tfrecord:data/train-*.tfrecord.")
    files = sorted(glob.glob(os.path.expanduser(pattern)))
    if not files:
        raise InputError(f"No TFRecord files match {pattern!r}. Give tfrecord:GLOB, e.g. tfrecord:data/*.tfrecord.")
    want_hw = parse_size(opts["size"]) if "size" in opts else None
    want_c = parse_channels(opts["channels"]) if "channels" in opts else None
    mode = parse_cache(opts.get("cache"))
    tf_ = tf()
    h = hashlib.sha256(b"tfrecord-v1")
    file_ids: list[np.ndarray] = []
    offs: list[np.ndarray] = []
    lens: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    state: dict[str, Any] = {}
    for fi, path in enumerate(files):
        def on_batch(offsets: list[int], recs: list[bytes], fi: int = fi, path: str = path) -> None:
            if "keys" not in state:
                state["keys"] = _keys(recs[0], path)
                state["first"] = (recs[0], path)
            image_key, label_key = state["keys"]
            try:
                parsed = tf_.io.parse_example(tf_.constant(recs, tf_.string),
                                              {label_key: tf_.io.FixedLenFeature([], tf_.int64),
                                               image_key: tf_.io.FixedLenFeature([], tf_.string)})
                y, blobs = parsed[label_key].numpy(), parsed[image_key].numpy()
            except (tf_.errors.OpError, UnicodeDecodeError) as e:  # TF's message may quote undecodable bytes
                why = (str(e).splitlines() or [''])[0][:120] if isinstance(e, tf_.errors.OpError) else "unparsable"
                raise InputError(f"TFRecord file {path!r}: a record lacks an int64 {label_key!r} or bytes "
                                 f"{image_key!r}, or is not a tf.train.Example ({why}); write every record "
                                 f"with {image_key!r} and {label_key!r}.") from None
            for off, blob in zip(offsets, blobs):  # header + end marker of every image: no bomb, no cut file
                probe(bytes(blob), f"{path} (the image of the record at byte {off - 12:,})",
                      "rewrite the file with that record fixed or left out.")
            bad = y[(y < 0) | (y >= limits.MAX_CLASSES)]
            if len(bad):
                raise InputError(f"TFRecord file {path!r} holds label {int(bad[0])}; labels must be class indices "
                                 f"0 to {limits.MAX_CLASSES - 1:,}. Fix the labels when writing the file.")
            for r in recs:
                h.update(len(r).to_bytes(8, "little"))
                h.update(r)
            h.update(y.astype("<i8").tobytes())
            file_ids.append(np.full(len(recs), fi, np.int32))
            offs.append(np.asarray(offsets, np.int64))
            lens.append(np.asarray([len(r) for r in recs], np.int64))
            labels.append(y.astype(np.int64))

        _framing(path, on_batch)
    if "keys" not in state:
        raise InputError(f"The TFRecord files matching {pattern!r} hold no records.")
    image_key, _ = state["keys"]
    first, first_path = state["first"]
    try:
        blob = tf_.train.Example.FromString(first).features.feature[image_key].bytes_list.value[0]
    except (IndexError, Exception):
        raise InputError(f"TFRecord file {first_path!r}: the first record's {image_key!r} holds no bytes; write "
                         "each image as one encoded JPEG or PNG.") from None
    p = probe(bytes(blob), f"{first_path} (first record's image)")
    hw = want_hw or p.hw
    channels = want_c or (3 if p.colour else 1)
    h.update(f"{hw[0]}x{hw[1]}x{channels}".encode())
    digest = h.hexdigest()
    source = TFRecordSource(files, np.concatenate(file_ids), np.concatenate(offs), np.concatenate(lens), image_key,
                            hw, channels, digest=digest)
    y = np.concatenate(labels)
    src, note = cached(source, mode, (digest,), "tfrecord")  # images of another size: resized to the first's
    return Splits({"all": (split_source(src, 0, len(y), digest), y)}, notes=[note])
