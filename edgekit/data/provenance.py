"""The dataset a model was trained on (the ``dataset`` of the manifest beside it), and how another
dataset differs from it.

Commands that take a trained model (export, validate, diagnose, optimize) read it so that, without
``--dataset``, they calibrate and measure on the model's own data rather than a default.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from edgekit.data.dataset import DatasetInfo
from edgekit.data.sources import absolute_spec, spec_path
from edgekit.errors import InputError
from edgekit.manifest import MANIFEST, load_manifest

# load_dataset options a manifest records beside the spec (limit only since it is recorded)
OPTIONS = ("seed", "test_split", "val_split", "limit", "preprocess")


@dataclasses.dataclass(frozen=True)
class Recorded:
    """The ``dataset`` entry of ``manifest``: spec, options, input_shape, num_classes, sha256."""

    dataset: Mapping[str, Any]
    manifest: Path

    @property
    def spec(self) -> str:
        return str(self.dataset["spec"])

    def options(self) -> dict[str, Any]:
        """The recorded load options that are present and of the right type (a manifest from
        elsewhere may hold anything)."""
        ok = {"seed": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "test_split": _fraction, "val_split": _fraction,
              "limit": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 10),
              "preprocess": lambda v: isinstance(v, str) and bool(v.strip())}
        return {k: self.dataset[k] for k in OPTIONS if k in self.dataset and ok[k](self.dataset[k])}

    def describe(self) -> str:
        """``idx:/data/mnist (28x28x1, 10 classes)``, as far as recorded."""
        d = self.dataset
        facts = [_shape(d["input_shape"]) if isinstance(d.get("input_shape"), list) else "",
                 f"{d['num_classes']} classes" if isinstance(d.get("num_classes"), int) else ""]
        facts = [f for f in facts if f]
        return self.spec + (f" ({', '.join(facts)})" if facts else "")


def recorded_dataset(paths: Iterable[str | os.PathLike | None]) -> Recorded | None:
    """The dataset recorded by the manifest beside the first of ``paths`` that has one naming a
    dataset (``run/model.keras`` -> ``run/manifest.json``; a folder's own manifest first). A manifest
    that is unreadable or names no dataset is passed over."""
    for p in paths:
        if p is None:
            continue
        p = Path(p)
        for cand in ([p / MANIFEST] if p.is_dir() else []) + [p.parent / MANIFEST]:
            if not cand.is_file():
                continue
            try:
                ds = load_manifest(cand, allow_incomplete=True).get("dataset")
            except InputError:
                continue
            if isinstance(ds, Mapping) and isinstance(ds.get("spec"), str) and ds["spec"].strip():
                return Recorded(ds, cand)
    return None


def check_recorded_path(rec: Recorded) -> None:
    """InputError (one line) when the recorded spec names a folder or file that is not there."""
    path = spec_path(rec.spec)
    if path is None or Path(path).exists():
        return
    where = "a relative path, not found from here" if not os.path.isabs(path) else "not found"
    raise InputError(f"The model's manifest {str(rec.manifest)!r} names dataset {rec.spec!r}, {where} "
                     f"({os.path.abspath(path)}). Give --dataset with where that data is now.")


def differences(rec: Recorded, info: DatasetInfo) -> tuple[list[str], bool]:
    """What differs between the recorded dataset and ``info`` (empty: the same data, split and
    pixels), and whether it is other data (shape, classes, pixels or contents) rather than the
    same source split another way (seed, splits, limit: the holdout may then hold training images)."""
    d = rec.dataset
    out = []
    shape = d.get("input_shape")
    if isinstance(shape, list) and tuple(shape) != tuple(info.input_shape):
        out.append(f"input shape {_shape(info.input_shape)} vs {_shape(shape)}")
    if isinstance(d.get("num_classes"), int) and d["num_classes"] != info.num_classes:
        out.append(f"{info.num_classes} classes vs {d['num_classes']}")
    if d.get("preprocess", "unit") != info.preprocess:
        out.append(f"pixels {info.preprocess} vs {d.get('preprocess', 'unit')}")
    if out or not isinstance(d.get("sha256"), str) or d["sha256"] == info.sha256:
        return out, bool(out)
    split = [f"{k} {getattr(info, k)} vs {d.get(k)}" for k in ("seed", "test_split", "val_split", "limit")
             if d.get(k) != getattr(info, k) and (k in d or k == "limit")]
    if split and info.spec == absolute_spec(rec.spec):
        return ["split (" + ", ".join(split) + "): the holdout may hold images the model was trained on"], False
    return [f"contents (sha256 {info.sha256[:12]} vs {d['sha256'][:12]})"], True


def describe(info: DatasetInfo) -> str:
    """``idx:/data/mnist (28x28x1, 10 classes)``."""
    return f"{info.spec} ({_shape(info.input_shape)}, {info.num_classes} classes)"


def mismatch(rec: Recorded | None, info: DatasetInfo) -> tuple[str, bool] | None:
    """One line naming both datasets and what differs, and whether it is other data (see
    :func:`differences`); None when ``info`` is the recorded data."""
    diff, other = differences(rec, info) if rec is not None else ([], False)
    if not diff:
        return None
    return (f"dataset {describe(info)} differs from {rec.describe()}, the data the model was trained on "
            f"(per {rec.manifest}): {'; '.join(diff)}"), other


def _fraction(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1


def _shape(shape: Iterable[Any]) -> str:
    return "x".join(str(v) for v in shape)


__all__ = ["Recorded", "recorded_dataset", "check_recorded_path", "differences", "describe", "mismatch", "OPTIONS"]
