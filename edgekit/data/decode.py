"""Decoding encoded images (JPEG, PNG ...) to uint8 pixels, the same way on every read path.

One function, :func:`tf_decode`, turns encoded bytes into a ``(H, W, C)`` uint8 tensor:
``tf.io.decode_image(channels=C, expand_animations=False)`` (what Keras
``image_dataset_from_directory`` does), ``tf.image.resize`` (bilinear, no antialias) to the
dataset's size, then round, clip and cast to uint8. Formats TensorFlow does not decode (TIFF,
PGM/PPM, WebP, BMP, CMYK JPEGs, grey GIFs) go through PIL (``convert("RGB"/"L")``) inside a
``tf.numpy_function`` and are resized by the same TensorFlow op. The in-memory cache, the disk
cache and reading the files directly all call it, so they give identical pixels.

Before anything is decoded, :func:`probe` checks a file's bytes cheaply: the PIL header (size,
colour, decompression-bomb limit) and the trailer (a JPEG ends with ``FFD9``, a PNG with
``IEND``), so a truncated file is found at load time.
"""
from __future__ import annotations

import dataclasses
import io
import struct
import warnings
from typing import Any

import numpy as np

from edgekit.data import limits
from edgekit.errors import InputError, first_line

VERSION = "tf-decode-resize-bilinear-round-v1"  # part of every cache key: change it when decoding changes
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")
_FIX = "re-copy or remove it, or load with bad_images=skip."
OP_SCOPE = "edgekit_decode"  # TensorFlow errors from these ops name it (see as_input_error)


@dataclasses.dataclass(frozen=True)
class Probe:
    """What a file's header says: ``(h, w)``, colour or not, and whether TensorFlow decodes it."""

    hw: tuple[int, int]
    colour: bool
    tf_native: bool  # JPEG (L/RGB), PNG; GIF only for 3 channels (decided at decode time)
    fmt: str


def trailer_ok(fmt: str, data: bytes) -> bool:
    """False when a JPEG or PNG is cut short (no ``FFD9`` near a JPEG's end, no ``IEND`` at a PNG's)."""
    if fmt == "JPEG":
        return b"\xff\xd9" in data[-1024:]
    if fmt == "PNG":
        return b"IEND" in data[-64:]
    return True


_PNG_MODES = {0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}  # IHDR colour type -> PIL's mode
_JPEG_MODES = {1: "L", 3: "RGB", 4: "CMYK"}  # components in the frame header -> PIL's mode
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (not DHT, JPG, DAC)


def fast_header(data: bytes) -> tuple[str, str, tuple[int, int]] | None:
    """``(format, PIL mode, (h, w))`` of a PNG (its IHDR) or JPEG (its frame header) read directly,
    ~20x faster than PIL; None for anything else or anything unusual (PIL then reads the header)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 26:
        w, h = struct.unpack(">II", data[16:24])
        mode = _PNG_MODES.get(data[25])
        return ("PNG", mode, (h, w)) if mode else None
    if data[:2] != b"\xff\xd8":
        return None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if marker in _SOF:
            if i + 10 > n:
                return None
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            mode = _JPEG_MODES.get(data[i + 9])
            return ("JPEG", mode, (h, w)) if mode else None
        if marker in (0xDA, 0xD9):  # scan or end before any frame header
            return None
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return None


def probe(data: bytes, name: str, fix: str = _FIX) -> Probe:
    """The header facts of an encoded image; InputError (one line, naming ``name``) when it is not a
    readable image, is truncated, or declares more than ``limits.MAX_IMAGE_PIXELS``."""
    from PIL import Image, UnidentifiedImageError

    try:
        fast = fast_header(data)
        if fast is not None:
            fmt, mode, hw = fast
            if hw[0] * hw[1] > limits.MAX_IMAGE_PIXELS:
                raise Image.DecompressionBombError(f"{hw[1]}x{hw[0]} pixels")
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as im:
                    if im.width * im.height > limits.MAX_IMAGE_PIXELS:
                        raise Image.DecompressionBombError(f"{im.width}x{im.height} pixels")
                    fmt, mode, hw = str(im.format), im.mode, (im.height, im.width)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(f"{name!r} declares too many pixels ({first_line(e)}); edgekit reads images of up to "
                         f"{limits.MAX_IMAGE_PIXELS:,} pixels (a decompression bomb?). Resize or remove it.") from None
    except UnidentifiedImageError:
        raise InputError(f"{name!r} is not a readable image: no known image header (empty, cut short or not an "
                         f"image); {fix}") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise InputError(f"{name!r} is not a readable image: {first_line(e)}; {fix}") from None
    if min(hw) < 1:
        raise InputError(f"{name!r} is not a readable image: it declares {hw[1]}x{hw[0]} pixels; {fix}")
    if not trailer_ok(fmt, data):
        raise InputError(f"{name!r} is not a readable image: the {fmt} file is truncated (its end marker is "
                         f"missing); {fix}")
    native = fmt == "PNG" or (fmt == "JPEG" and mode in ("L", "RGB")) or fmt == "GIF"
    return Probe(hw, mode not in GRAY_MODES, native, fmt)


def tf_native(p: Probe, channels: int) -> bool:
    """Whether ``tf.io.decode_image`` decodes this file at ``channels`` (GIFs only as RGB)."""
    return p.tf_native and not (p.fmt == "GIF" and channels == 1)


def pil_decode(data: bytes, channels: int) -> np.ndarray:
    """uint8 ``(h, w, channels)`` of encoded bytes at their own size, through PIL (the fallback)."""
    from PIL import Image

    with Image.open(io.BytesIO(bytes(data))) as im:
        if im.width * im.height > limits.MAX_IMAGE_PIXELS:  # checked at load; files may change
            raise ValueError(f"{im.width}x{im.height} pixels: over the decompression-bomb limit")
        im = im.convert("RGB" if channels == 3 else "L")  # L: ITU-R 601-2 luminance
        return np.asarray(im, np.uint8).reshape(im.height, im.width, channels)


def tf_decode(data: Any, native: Any, hw: tuple[int, int], channels: int) -> Any:
    """uint8 ``(h, w, channels)`` tensor of encoded bytes ``data`` (a scalar string tensor);
    ``native`` (a bool tensor, or ``True`` when every file is) picks ``tf.io.decode_image`` or the PIL fallback."""
    from edgekit._lazy import tf

    tf_ = tf()
    with tf_.name_scope(OP_SCOPE):
        def by_tf():
            return tf_.io.decode_image(data, channels=channels, expand_animations=False, dtype=tf_.uint8)

        def by_pil():
            img = tf_.numpy_function(lambda b: pil_decode(b, channels), [data], tf_.uint8, stateful=False)
            return tf_.reshape(img, tf_.stack([tf_.shape(img)[0], tf_.shape(img)[1], channels]))

        img = by_tf() if native is True else tf_.cond(native, by_tf, by_pil)
        img.set_shape((None, None, channels))

        def resized():  # bilinear weights are a convex combination: the result stays in 0..255
            return tf_.cast(tf_.round(tf_.image.resize(img, hw, method="bilinear")), tf_.uint8)

        # an image already at the size is its own bilinear resize (exactly): skip the float round trip
        same = tf_.reduce_all(tf_.equal(tf_.shape(img)[:2], tf_.constant(hw, tf_.int32)))
        out = tf_.cond(same, lambda: img, resized)
        out.set_shape((*hw, channels))
        return out


def decode_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a TensorFlow error raised while decoding an image in a pipeline."""
    mod = type(exc).__module__ or ""
    return mod.startswith("tensorflow") and (OP_SCOPE in str(exc) or "numpy_function" in str(exc).lower()
                                             and "image" in str(exc).lower())


def tf_message(exc: BaseException) -> str:
    """What a TensorFlow error says went wrong, in one short line: the last ``: ``-separated part of
    its first informative line (``jpeg::Uncompress failed. Invalid JPEG data ...``), not ``Graph
    execution error:``."""
    if isinstance(exc, UnicodeDecodeError):
        return "the record is not readable"
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if "failed" in ln.lower() or "invalid" in ln.lower() or "error in" in ln.lower()]
    line = (useful or lines or ["decoding failed"])[-1]
    if line.lower().startswith("error in user-defined function") and ": " in line:
        line = line.rsplit(": ", 1)[-1]
    return line.strip(" [].")[:200] or "decoding failed"


def as_input_error(exc: BaseException) -> InputError | None:
    """A one-line InputError for an image that failed to decode inside ``tf.data`` (None otherwise)."""
    if not decode_error(exc):
        return None
    return InputError(f"An image of the dataset failed to decode while it was read ({tf_message(exc)}); "
                      "load the dataset again with bad_images=skip, or find and remove the broken file.")


class DecodedSource:
    """Base of sources whose images decode in TensorFlow (``tf_gather``): NumPy reads run the same
    graph eagerly, and a failure is explained as one InputError naming the first bad image
    (:meth:`undecodable` words it)."""

    _eager: Any = None

    def tf_gather(self) -> Any:  # source index tensor -> uint8 (n, h, w, c)
        raise NotImplementedError

    def undecodable(self, i: int, why: str) -> str:
        raise NotImplementedError

    def _graph(self) -> Any:
        from edgekit._lazy import tf

        tf_ = tf()
        if self._eager is None:
            self._eager = tf_.function(self.tf_gather(), input_signature=[tf_.TensorSpec([None], tf_.int64)])
        return self._eager

    def read(self, index: np.ndarray) -> np.ndarray:
        from edgekit._lazy import tf

        tf_ = tf()
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        try:
            return self._graph()(tf_.constant(index)).numpy()
        except (tf_.errors.OpError, UnicodeDecodeError) as e:
            self.explain(index, e)
            raise

    def explain(self, index: np.ndarray, exc: BaseException) -> None:
        """Raise a one-line InputError naming the first image of ``index`` that does not decode."""
        from edgekit._lazy import tf

        tf_ = tf()
        for i in np.asarray(index, dtype=np.int64):
            try:
                self._graph()(tf_.constant([i], tf_.int64))
            except (tf_.errors.OpError, UnicodeDecodeError) as e:
                raise InputError(self.undecodable(int(i), tf_message(e))) from None
        raise InputError(f"Decoding the dataset's images failed: {tf_message(exc)}") from None
