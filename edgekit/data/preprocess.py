"""Input preprocessing: what a model expects its pixels to be, applied to a dataset's images as they are read.

Datasets hold float32 NHWC images in [0, 1] (``unit``). A model trained elsewhere may expect
another convention; ``--preprocess`` (CLI) or ``data.preprocess`` (recipe) names it, and
:func:`preprocess_dataset` sets it on every split (converted a batch at a time as read), so training, calibration, the
reference model and every runtime see the same numbers. Conventions:

- ``unit``: [0, 1], as stored (the default; nothing changes);
- ``symmetric``: [-1, 1] (``2x - 1``);
- ``raw255``: [0, 255];
- ``imagenet``: ``(x - mean) / std`` per RGB channel, mean 0.485/0.456/0.406, std 0.229/0.224/0.225;
- ``mean=M,std=S``: ``(255x - M) / S`` with M, S one value or one per channel joined by ``/``,
  in 0..255 pixel units (e.g. ``mean=127.5,std=127.5``).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from edgekit.errors import UsageError

UNIT = "unit"
NAMED = {  # name -> (mean, std) on [0, 1] images: x' = (x - mean) / std
    UNIT: ((0.0,), (1.0,)),
    "symmetric": ((0.5,), (0.5,)),
    "raw255": ((0.0,), (1 / 255,)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
EXPECTED = "unit, symmetric, raw255, imagenet or mean=M,std=S (0..255 units; per channel as a/b/c)"


def parse_preprocess(spec: str | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` on [0, 1] images for a preprocess spec (UsageError naming the choices)."""
    s = (spec or UNIT).strip()
    if s in NAMED:
        return NAMED[s]
    parts = dict(p.split("=", 1) for p in s.split(",") if "=" in p)
    if set(parts) != {"mean", "std"} or len(s.split(",")) != 2:
        raise UsageError(f"Unknown preprocess {spec!r}. Expected {EXPECTED}.")
    try:
        mean = tuple(float(v) / 255 for v in parts["mean"].split("/"))
        std = tuple(float(v) / 255 for v in parts["std"].split("/"))
    except ValueError:
        raise UsageError(f"preprocess mean and std must be numbers. Expected {EXPECTED}. Received: {spec!r}.") from None
    if any(v <= 0 for v in std):
        raise UsageError(f"preprocess std must be > 0. Received: {spec!r}.")
    return mean, std


def checked_mean_std(spec: str | None, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` of ``spec`` for images with ``channels`` channels (UsageError when they don't fit)."""
    mean, std = parse_preprocess(spec)
    for name, v in (("mean", mean), ("std", std)):
        if len(v) not in (1, channels):
            raise UsageError(f"preprocess {spec!r} gives {len(v)} {name} values for images with {channels} "
                             f"channel(s). Give 1 value or {channels}.")
    return mean, std


def preprocess_images(x: np.ndarray, spec: str | None) -> np.ndarray:
    """``x`` (float32 NHWC in [0, 1]) under the convention ``spec``."""
    mean, std = checked_mean_std(spec, x.shape[-1])
    if mean == (0.0,) and std == (1.0,):
        return x
    return ((x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).astype(np.float32)


def preprocess_dataset(dataset: Any, spec: str | None) -> Any:
    """The dataset with every split read under ``spec`` and ``info.preprocess`` recording it
    (the one place preprocessing is chosen; pixels are converted a batch at a time when read)."""
    spec = (spec or UNIT).strip()
    if spec == UNIT:
        return dataset
    checked_mean_std(spec, dataset.info.input_shape[-1])
    xs = {f"x_{k}": getattr(dataset, f"x_{k}").with_preprocess(spec) for k in ("train", "val", "test")}
    return dataclasses.replace(dataset, **xs, info=dataclasses.replace(dataset.info, preprocess=spec))
