"""Image folders (``images:DIR``): one sub-folder per class, optionally under train/val/test
sub-folders (Keras ``image_dataset_from_directory`` layout), read at the images' own size
and colour unless ``size=`` / ``channels=`` say otherwise.

Loading is in memory (``Dataset`` holds NumPy arrays that every stage indexes): a folder
whose float32 images would pass ``limits.MAX_BYTES`` is refused with the numbers, not streamed.
Files without an image extension are skipped and counted in a note; a file with one that
does not decode, or a class folder without images, is an error. So are a symlink that leads
out of the folder, an image file that is not a regular file (FIFO, device, socket), and an
image whose header declares more than ``limits.MAX_IMAGE_PIXELS`` (a decompression bomb).
"""
from __future__ import annotations

import stat
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.data import limits
from edgekit.data.limits import file_kind, inside, open_regular
from edgekit.errors import InputError, UsageError, first_line

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm")
SPLIT_DIRS = {"train": "train", "val": "val", "validation": "val", "test": "test"}
OPTIONS = ("size", "channels")
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
            mode = inside(f, root, "File").stat().st_mode
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


def _open(f: Path, decode: Any) -> Any:
    """``decode(image)`` of the regular file ``f``; InputError (one line) when it is not an image
    or declares more than ``limits.MAX_IMAGE_PIXELS`` (checked from the header, before decoding)."""
    from PIL import Image, UnidentifiedImageError

    fh, _ = open_regular(f, "Image file")
    try:
        with fh, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fh) as im:
                if im.width * im.height > limits.MAX_IMAGE_PIXELS:
                    raise Image.DecompressionBombError(f"{im.width}x{im.height} pixels")
                return decode(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(f"{str(f)!r} declares too many pixels ({first_line(e)}); edgekit reads images of up to "
                         f"{limits.MAX_IMAGE_PIXELS:,} pixels (a decompression bomb?). Resize or remove it.") from None
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"{str(f)!r} is not a readable image: {first_line(e)}") from None


def _probe(f: Path) -> tuple[tuple[int, int], bool]:
    """``((h, w), is_colour)`` from the file header; InputError when it is not an image."""
    return _open(f, lambda im: ((im.height, im.width), im.mode not in GRAY_MODES))


def _read(f: Path, hw: tuple[int, int], channels: int) -> np.ndarray:
    from PIL import Image

    def decode(im: Any) -> np.ndarray:
        im = im.convert("RGB" if channels == 3 else "L")  # L: ITU-R 601-2 luminance
        if (im.height, im.width) != hw:
            im = im.resize((hw[1], hw[0]), Image.BILINEAR)
        return np.asarray(im, np.uint8)

    return _open(f, decode)


def load_image_folder(arg: str, source: str = "images") -> Splits:
    """Raw splits of an image folder (see the module docstring); ``arg`` is ``DIR[,size=..][,channels=..]``."""
    path, opts = split_options(arg, OPTIONS, source)
    root = Path(path)
    if path and root.exists() and not root.is_dir():
        raise InputError(f"Image folder {path!r} is {file_kind(root.stat().st_mode)}, not a folder. Give images:DIR "
                         "with one sub-folder per class.")
    if not path or not root.is_dir():
        raise InputError(f"Image folder {path!r} does not exist. Give images:DIR with one sub-folder per class.")
    want_hw = parse_size(opts["size"]) if "size" in opts else None
    want_c = parse_channels(opts["channels"]) if "channels" in opts else None
    skipped: list[Path] = []
    layout = _layout(root, skipped)
    classes = sorted({c for split in layout.values() for c in split})
    if len(classes) < 2:
        raise InputError(f"{path!r} has {len(classes)} class sub-folders; at least 2 are needed.")
    files = [(split, f, classes.index(c)) for split, byclass in layout.items() for c, fs in byclass.items()
             for f in fs]
    probes = [_probe(f) for _, f, _ in files]
    sizes = Counter(hw for hw, _ in probes)
    hw = want_hw or sizes.most_common(1)[0][0]
    channels = want_c or (3 if any(colour for _, colour in probes) else 1)
    notes = []
    if want_hw is None and len(sizes) > 1:
        n_off = sum(n for s, n in sizes.items() if s != hw)
        notes.append(f"images: {n_off} of {len(files)} images resized to {hw[0]}x{hw[1]} (the most common of "
                     f"{len(sizes)} sizes); pass size=HxW to choose.")
    if skipped:
        notes.append(f"images: skipped {len(skipped)} non-image file(s), e.g. {str(skipped[0])!r}.")
    need = len(files) * hw[0] * hw[1] * channels * 4
    if need > limits.MAX_BYTES:
        raise InputError(
            f"{path!r} holds {len(files):,} images of {hw[0]}x{hw[1]}x{channels}: {need / 2**20:,.0f} MiB as "
            f"float32, over the {limits.MAX_BYTES / 2**20:,.0f} MiB edgekit loads into memory. Use a smaller size= "
            "or a folder with fewer images.")
    out = Splits(notes=notes)
    for split in layout:
        rows = [(f, label) for s, f, label in files if s == split]
        x = np.stack([_read(f, hw, channels) for f, _ in rows])
        out[split] = (x, np.asarray([label for _, label in rows], np.int64))
    return out
