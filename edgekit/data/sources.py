"""Dataset sources, chosen by a spec string (``digits``, ``idx:DIR``, ``npz:FILE`` ...).

Each source returns raw splits: ``{"train": (x, y), "test": (x, y)}`` or ``{"all": (x, y)}``
with images as ``(N, H, W)`` or ``(N, H, W, C)`` arrays, or as a
:class:`~edgekit.data.store.PixelSource` (streamed: image files, TFRecords, a stored ``.npz``
member, a cache), and integer labels as arrays.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekit.data.idx import load_idx_folder
from edgekit.data.npz import load_npz
from edgekit.errors import InputError, UsageError
from edgekit.registry import Registry

RawSplits = dict[str, tuple[Any, np.ndarray]]  # images: an array or a PixelSource
SOURCES: Registry[Callable[[str], RawSplits]] = Registry("dataset")

IMAGE_SIZE = 28


@SOURCES.register("digits")
def digits(_: str = "") -> RawSplits:
    """scikit-learn's 1,797 real 8x8 handwritten digits, scaled to 20x20 and centred in
    28x28 like MNIST, values 0..255."""
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    d = load_digits()
    small = d.images.astype(np.float32) / 16.0  # (N, 8, 8) in [0, 1]
    big = zoom(small, (1, 20 / 8, 20 / 8), order=1).clip(0, 1)
    x = np.zeros((len(small), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    x[:, 4:24, 4:24] = np.round(big * 255).astype(np.uint8)
    return {"all": (x, d.target.astype(np.int64))}


@SOURCES.register("idx")
def idx(arg: str) -> RawSplits:
    """MNIST-format IDX files in a folder (gzip or raw)."""
    if not arg:
        raise UsageError("Dataset 'idx' needs a folder: idx:DIR, e.g. idx:../shared/data/mnist.")
    return load_idx_folder(arg)


@SOURCES.register("npz")
def npz(arg: str) -> RawSplits:
    """A NumPy .npz with x/y or x_train/y_train/x_test/y_test (loaded without pickle; stored
    uint8 images are read from the file by offset, compressed ones decoded once into a cache)."""
    if not arg:
        raise UsageError("Dataset 'npz' needs a file: npz:FILE.")
    arrays = load_npz(arg)
    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        return {"train": (arrays["x_train"], arrays["y_train"]), "test": (arrays["x_test"], arrays["y_test"])}
    return {"all": (arrays["x"], arrays["y"])}


@SOURCES.register("images")
def images(arg: str) -> RawSplits:
    """A folder of class sub-folders (or train/val/test of them) at the images' own size and
    colour, streamed; options: ``images:DIR,size=32x32,channels=3,cache=auto,bad_images=refuse``."""
    from edgekit.data.images import load_image_folder

    return load_image_folder(arg)


@SOURCES.register("tfrecord")
def tfrecord(arg: str) -> RawSplits:
    """TFRecord files of tf.train.Examples (``image`` JPEG/PNG bytes + ``label`` int64, or
    ``image/encoded`` + ``image/class/label``), streamed; options:
    ``tfrecord:GLOB,size=HxW,channels=1|3,cache=auto``."""
    if not arg:
        raise UsageError("Dataset 'tfrecord' needs files: tfrecord:GLOB, e.g. tfrecord:data/train-*.tfrecord.")
    from edgekit.data.tfrecord import load_tfrecords

    return load_tfrecords(arg)


def _keras_cache(name: str) -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / name


def _cached(path: Path, what: str, hint: str) -> Path:
    """``path`` when it exists; an InputError that says edgekit never downloads otherwise."""
    if not path.exists():
        raise InputError(f"{what} is not cached at {path} and edgekit does not download data. {hint}")
    return path


@SOURCES.register("mnist")
def mnist(_: str = "") -> RawSplits:
    """MNIST from the Keras cache (~/.keras/datasets/mnist.npz); never downloads."""
    path = _cached(_keras_cache("mnist.npz"), "MNIST",
                   "Use idx:DIR with MNIST IDX files, or place mnist.npz there.")
    return npz(str(path))


@SOURCES.register("fashion_mnist")
def fashion_mnist(_: str = "") -> RawSplits:
    """Fashion-MNIST from the Keras cache (~/.keras/datasets/fashion-mnist/); never downloads."""
    return load_idx_folder(_cached(_keras_cache("fashion-mnist"), "Fashion-MNIST", "Use idx:DIR with its IDX files."))


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``"idx:DIR"`` into ``("idx", "DIR")``; names without ``:`` take no argument."""
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError(f"Dataset spec must be a non-empty string. Received: {spec!r}.")
    name, _, arg = spec.partition(":")
    return name.strip(), arg.strip()


PATH_SOURCES = ("idx", "npz", "images", "tfrecord")  # sources whose argument is a path (images: then ,key=value options)


def spec_path(spec: str) -> str | None:
    """The path in a path source's spec (``idx:DIR`` -> ``DIR``; ``images:DIR,size=32`` -> ``DIR``);
    None for sources without one (``digits``, ``mnist``) or an empty argument."""
    name, arg = parse_spec(spec)
    if name not in PATH_SOURCES or not arg:
        return None
    if name in ("images", "tfrecord"):
        from edgekit.data.images import OPTIONS, split_options
        from edgekit.data.tfrecord import OPTIONS as TFRECORD_OPTIONS

        return split_options(arg, OPTIONS if name == "images" else TFRECORD_OPTIONS, name)[0] or None
    return arg


def absolute_spec(spec: str, base: str | os.PathLike | None = None) -> str:
    """``spec`` with its path made absolute: a relative path is taken from ``base`` (default: the
    working directory), ``~`` is expanded; options and specs without a path are kept as they are."""
    path = spec_path(spec)
    if path is None:
        return spec
    full = os.path.normpath(os.path.join(os.fspath(base) if base is not None else os.getcwd(),
                                         os.path.expanduser(path)))
    if full == path:
        return spec
    name, arg = parse_spec(spec)
    return f"{name}:{full}{arg[len(path):] if arg.startswith(path) else ''}"


def load_raw(spec: str) -> RawSplits:
    name, arg = parse_spec(spec)
    return SOURCES.get(name)(arg)
