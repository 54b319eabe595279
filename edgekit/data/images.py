"""Image folders (``images:DIR``): one sub-folder per class, optionally under train/val/test
sub-folders (Keras ``image_dataset_from_directory`` layout), read at the images' own size
and colour unless ``size=`` / ``channels=`` say otherwise.

Loading streams: the files are listed, each is read once to hash its bytes (the dataset's
identity) and to probe its header and trailer (:func:`edgekit.data.decode.probe`: size, colour,
decompression bomb, truncation); no pixels are decoded then. The images decode and resize in the
``tf.data`` pipeline (:class:`FileSource`), or once into a cache (``cache=memory|disk|none|auto``,
:mod:`edgekit.data.cache`), so a folder of any size trains in bounded memory.

Options: ``size=HxW``, ``channels=1|3``, ``cache=auto`` (default), ``bad_images=refuse`` (default:
the first unreadable or truncated image is an error naming it) or ``skip`` (dropped, counted in a
note). Files without an image extension are skipped and counted in a note; a class folder without
images is an error. So are a symlink that leads out of the folder, an image file that is not a
regular file (FIFO, device, socket), and an image whose header declares more than
``limits.MAX_IMAGE_PIXELS`` (a decompression bomb).
"""
from __future__ import annotations

import hashlib
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.data.decode import DecodedSource
from edgekit.data.limits import file_kind, inside, open_regular
from edgekit.errors import InputError, UsageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm")
SPLIT_DIRS = {"train": "train", "val": "val", "validation": "val", "test": "test"}
OPTIONS = ("size", "channels", "cache", "bad_images")
BAD_IMAGES = ("refuse", "skip")
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


class Splits(dict):
    """Raw splits plus one-line notes about what loading changed (resizes, skipped files)."""

    def __init__(self, *args: Any, notes: list[str] | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self.notes = list(notes or [])


def split_options(arg: str, known: tuple[str, ...], source: str) -> tuple[str, dict[str, str]]:
    """``"DIR,size=32,channels=1"`` as ``("DIR", {"size": "32", "channels": "1"})``.

    Only trailing ``,key=value`` parts count as options, so a comma inside a path is kept."""
    path, options = arg, {}
    while "," in path:
        head, _, tail = path.rpartition(",")
        key, sep, value = tail.partition("=")
        if not sep:
            break
        if key.strip() not in known:
            raise UsageError(f"Dataset {source!r} has no option {key.strip()!r}. Its options: "
                             f"{', '.join(known)} (e.g. {source}:DIR,size=32x32,channels=3). Received: {arg!r}.")
        options.setdefault(key.strip(), value.strip())
        path = head
    return path.strip(), options


def parse_size(value: str) -> tuple[int, int]:
    """``"32"`` or ``"32x48"`` (height x width) as ``(h, w)``; both at least 1."""
    try:
        hw = tuple(int(v) for v in value.lower().split("x"))
    except ValueError:
        hw = ()
    if len(hw) == 1:
        hw = hw * 2
    if len(hw) != 2 or min(hw) < 1:
        raise UsageError(f"images size must be N or HxW with positive integers, e.g. size=32 or "
                         f"size=96x96. Received: size={value!r}.")
    return hw


def parse_channels(value: str) -> int:
    if value not in ("1", "3"):
        raise UsageError(f"images channels must be 1 (grayscale) or 3 (RGB). Received: channels={value!r}.")
    return int(value)


def _class_files(folder: Path, root: Path, skipped: list[Path]) -> dict[str, list[Path]]:
    out = {}
    for cls in sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_dir()):
        inside(cls, root, "Class folder")
        files = []
        for f in sorted(cls.rglob("*")):
            if f.name.startswith("."):
                continue
            # rglob does not enter linked folders, so only a link itself can lead out of the class folder
            mode = (inside(f, root, "File") if f.is_symlink() else f).stat().st_mode
            if stat.S_ISDIR(mode):
                continue
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append(f)
            elif not stat.S_ISREG(mode):
                raise InputError(f"Image file {str(f)!r} is {file_kind(mode)}, not a regular file; remove it.")
            else:
                files.append(f)
        if not files:
            raise InputError(f"Class folder {str(cls)!r} holds no images (extensions: "
                             f"{', '.join(IMAGE_SUFFIXES)}); remove it or add images.")
        out[cls.name] = files
    return out


def _layout(root: Path, skipped: list[Path]) -> dict[str, dict[str, list[Path]]]:
    """``{split: {class: files}}`` with split ``all`` for a flat class-folder layout."""
    real = root.resolve()
    subs = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    named = {SPLIT_DIRS[n]: p for n, p in subs.items() if n in SPLIT_DIRS}
    if named:
        if "train" not in named:
            raise InputError(f"{str(root)!r} has {', '.join(sorted(named))} sub-folders but no train/.")
        others = sorted(set(subs) - set(SPLIT_DIRS))
        if others:
            raise InputError(f"{str(root)!r} mixes split folders (train/, test/ ...) with {others[0]!r}; "
                             "put every class folder under a split.")
        layout = {split: _class_files(inside(p, real, "Split folder"), real, skipped) for split, p in named.items()}
        if "test" not in layout:
            layout["all"] = layout.pop("train")
        return layout
    return {"all": _class_files(root, real, skipped)}


def parse_bad_images(value: str | None) -> str:
    v = (value or "refuse").strip().lower()
    if v not in BAD_IMAGES:
        raise UsageError(f"bad_images must be refuse or skip. Received: bad_images={value!r}.")
    return v


class FileSource(DecodedSource):
    """Encoded image files read and decoded on demand, in TensorFlow (:mod:`edgekit.data.decode`)."""

    dtype = np.dtype(np.uint8)

    def __init__(self, files: list[str], native: np.ndarray, hw: tuple[int, int], channels: int,
                 digest: str | None = None):
        self.files = list(files)
        self.native = np.asarray(native, dtype=bool)
        self.hw, self.channels = (int(hw[0]), int(hw[1])), int(channels)
        self.shape = (len(self.files), *self.hw, self.channels)
        self.digest = digest

    def tf_gather(self) -> Any:
        """``source index (int64 tensor) -> uint8 (n, h, w, c)``: read, decode and resize in TensorFlow."""
        from edgekit._lazy import tf
        from edgekit.data.decode import tf_decode

        tf_ = tf()
        paths, native = tf_.constant(self.files), tf_.constant(self.native)
        hw, c = self.hw, self.channels

        def gather(idx: Any) -> Any:
            return tf_.map_fn(lambda a: tf_decode(tf_.io.read_file(a[0]), a[1], hw, c),
                              (tf_.gather(paths, idx), tf_.gather(native, idx)),
                              fn_output_signature=tf_.TensorSpec((*hw, c), tf_.uint8), parallel_iterations=16)

        return gather

    def tf_one(self) -> Any:
        """``source index (int64 scalar tensor) -> uint8 (h, w, c)``: one file read, decoded and resized."""
        from edgekit._lazy import tf
        from edgekit.data.decode import tf_decode

        tf_ = tf()
        paths, native = tf_.constant(self.files), tf_.constant(self.native)
        every = bool(self.native.all())  # no PIL fallback needed: no cond in the graph
        hw, c = self.hw, self.channels
        return lambda i: tf_decode(tf_.io.read_file(tf_.gather(paths, i)), True if every else tf_.gather(native, i),
                                   hw, c)

    def undecodable(self, i: int, why: str) -> str:
        return f"{self.files[i]!r} is not a readable image: {why}; remove it, or load with bad_images=skip."


def _scan(f: Path, h: Any) -> Any:
    """The probe of ``f`` (read once: its bytes go into the hash ``h``); InputError when unreadable."""
    from edgekit.data.decode import probe

    fh, _ = open_regular(f, "Image file")
    with fh:
        try:
            data = fh.read()
        except OSError as e:
            raise InputError(f"Image file {str(f)!r} is not readable: {e.strerror or e}.") from None
    p = probe(data, str(f))
    h.update(len(data).to_bytes(8, "little"))
    h.update(data)
    return p


def load_image_folder(arg: str, source: str = "images") -> Splits:
    """Raw splits of an image folder (see the module docstring); ``arg`` is ``DIR[,option=value...]``.
    Each split's images are a :class:`FileSource` (or its cache), labels int64 arrays."""
    from edgekit.data.cache import cached, parse_cache
    from edgekit.data.decode import tf_native
    from edgekit.data.store import split_source

    path, opts = split_options(arg, OPTIONS, source)
    root = Path(path)
    if path and root.exists() and not root.is_dir():
        raise InputError(f"Image folder {path!r} is {file_kind(root.stat().st_mode)}, not a folder. Give images:DIR "
                         "with one sub-folder per class.")
    if not path or not root.is_dir():
        raise InputError(f"Image folder {path!r} does not exist. Give images:DIR with one sub-folder per class.")
    want_hw = parse_size(opts["size"]) if "size" in opts else None
    want_c = parse_channels(opts["channels"]) if "channels" in opts else None
    mode = parse_cache(opts.get("cache"))
    bad = parse_bad_images(opts.get("bad_images"))
    skipped: list[Path] = []
    layout = _layout(root, skipped)
    classes = sorted({c for split in layout.values() for c in split})
    if len(classes) < 2:
        raise InputError(f"{path!r} has {len(classes)} class sub-folders; at least 2 are needed.")
    files, probes, dropped = [], [], []
    h = hashlib.sha256(b"images-v1")
    todo = [(split, c, f) for split, byclass in layout.items() for c, fs in byclass.items() for f in fs]

    def scan(items: list[tuple[str, str, Path]]) -> list[tuple[Any, bytes]]:
        out = []
        for item in items:
            fh = hashlib.sha256()
            try:
                out.append((_scan(item[2], fh), fh.digest()))
            except InputError as e:
                out.append((e, b""))
        return out

    chunks = [todo[i:i + 256] for i in range(0, len(todo), 256)]
    with ThreadPoolExecutor(max_workers=min(8, 2 * (os.cpu_count() or 1))) as pool:  # reads and hashes overlap
        scanned = (r for chunk in pool.map(scan, chunks) for r in chunk)
        for (split, c, f), (p, digest) in zip(todo, scanned):
            if isinstance(p, InputError):
                if bad == "refuse":
                    raise p
                dropped.append(str(p))
                continue
            label = classes.index(c)
            h.update(f"{split}/{label}/".encode() + digest)
            files.append((split, f, label))
            probes.append(p)
    if not files:
        raise InputError(f"{path!r} holds no readable images.")
    sizes = Counter(p.hw for p in probes)
    hw = want_hw or sizes.most_common(1)[0][0]
    channels = want_c or (3 if any(p.colour for p in probes) else 1)
    notes = []
    if want_hw is None and len(sizes) > 1:
        n_off = sum(n for s, n in sizes.items() if s != hw)
        notes.append(f"images: {n_off} of {len(files)} images resized to {hw[0]}x{hw[1]} (the most common of "
                     f"{len(sizes)} sizes); pass size=HxW to choose.")
    if skipped:
        notes.append(f"images: skipped {len(skipped)} non-image file(s), e.g. {str(skipped[0])!r}.")
    if dropped:
        notes.append(f"images: bad_images=skip dropped {len(dropped)} unreadable image(s); the first: {dropped[0]}")
    h.update(f"{hw[0]}x{hw[1]}x{channels}".encode())
    digest = h.hexdigest()
    order = [s for s in ("all", "train", "val", "test") if s in layout]
    rows = [(s, f, label, p) for s in order for (s2, f, label), p in zip(files, probes) if s2 == s]
    whole = FileSource([str(f) for _, f, _, _ in rows], [tf_native(p, channels) for *_, p in rows], hw, channels,
                       digest=digest)
    src, note = cached(whole, mode, (digest,), "images")
    notes.append(note)
    out = Splits(notes=notes)
    start = 0
    for split in order:
        labels = np.asarray([label for s, _, label, _ in rows if s == split], np.int64)
        if not len(labels):
            continue
        out[split] = (split_source(src, start, len(labels), f"{digest}:{split}"), labels)
        start += len(labels)
    return out
