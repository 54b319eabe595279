"""One model handle for every command: ``edgekit.models.load(path_or_model)``.

A :class:`ModelHandle` knows what a model is (format, framework, input layout, input and
output tensors) and predicts with the model's *own* framework, which is the reference every
artifact is validated against. Formats are plug-ins in :data:`MODEL_FORMATS`, keyed by
:mod:`edgekit.vocab` names: each has ``detect(path) -> bool`` (by content, not only the
suffix) and ``load(path, trust, **options) -> ModelHandle``. A format is one module plus a
registration line in :func:`edgekit.models.loading.load_formats`, which also holds ``load`` (the
format modules import this module, so it imports none of them).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from edgekit import vocab
from edgekit.errors import InputError, UsageError
from edgekit.registry import Registry


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One model input or output: its name, shape without the batch axis, dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str = "float32"


@dataclasses.dataclass
class ModelHandle:
    """A loaded model with what edgekit needs to know about it.

    ``model`` is the tf_keras model when there is one (tf_keras files, and Keras 3 models
    once translated), else the framework's own object. ``predict`` takes float32 NHWC
    images as the dataset holds them and returns float32 outputs (N, classes).
    """

    model: Any
    format: str  # vocab.FORMAT_*
    framework: str  # what computes the reference outputs: tf_keras, keras, tensorflow, onnxruntime
    layout: str  # vocab.NHWC or vocab.NCHW: the model's own input layout
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    path: str | None = None
    predict_fn: Callable[[np.ndarray], np.ndarray] | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """The image shape (H, W, C) the model takes, in NHWC order whatever its layout."""
        s = self.inputs[0].shape
        if self.layout == vocab.NCHW and len(s) == 3:
            return (s[1], s[2], s[0])
        return tuple(s)

    @property
    def num_outputs(self) -> int:
        return int(self.outputs[0].shape[-1] or 0)

    @property
    def is_keras(self) -> bool:
        """True when ``model`` is a tf_keras model (compress and the tf_keras export path work)."""
        return self.format == vocab.FORMAT_TF_KERAS or (
            self.format == vocab.FORMAT_KERAS3 and self.info.get("translation", {}).get("ok") is True)

    def keras_model(self, doing: str) -> Any:
        """The tf_keras model, or one UsageError line saying ``doing`` (e.g. "exported") does not
        work for this format yet."""
        if not self.is_keras:
            who = self.path or "The model"
            if self.format == vocab.FORMAT_KERAS3:
                why = self.info.get("translation", {}).get("reason", "no tf_keras translation")
                raise UsageError(f"{who} is a Keras 3 model that edgekit cannot {doing}: it needs the model as "
                                 f"tf_keras layers and the translation failed ({why}). Received format: {self.format}.")
            raise UsageError(f"{who} is a {self.format} model, which edgekit cannot {doing}: that needs Keras layers "
                             f"(tfmot wraps Keras layers), so only {vocab.FORMAT_TF_KERAS} and {vocab.FORMAT_KERAS3} "
                             f"models can be; export, validate, evaluate and benchmark take every format. "
                             f"Received format: {self.format}.")
        return self.model

    def tf_graph(self) -> Any:
        """The model as a :class:`~edgekit.models.layout.TfGraph` (NHWC float32 ``image`` in, first
        output out), whatever the format: what the export layer converts when there is no tf_keras
        model. Built once and kept."""
        make = self.info.get("tf_graph")
        if make is None:
            from edgekit.models.layout import cached, keras_graph

            keras3 = self.info.get("keras3_model")
            if keras3 is not None:
                make = cached(lambda: keras_graph(keras3, frozen=True))
            elif self.is_keras:
                make = cached(lambda: keras_graph(self.model))
            else:
                raise UsageError(f"{self.path or 'The model'} ({self.format}) offers no TensorFlow graph to convert. "
                                 f"Received format: {self.format}.")
            self.info["tf_graph"] = make
        return make()

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Outputs of the model's own framework for float32 NHWC images ``x``: an array, or a dataset
        split (:class:`~edgekit.data.store.Images`), which is read and run ``batch_size`` images at a
        time (never read whole; the outputs, N x classes, are kept)."""
        from edgekit.data.store import Images
        from edgekit.runtimes.base import predict_batches
        from edgekit.runtimes.keras import keras_predict

        if self.predict_fn is not None:
            if isinstance(x, Images):
                return predict_batches(self.predict_fn, x, batch_size).astype(np.float32, copy=False)
            return np.asarray(self.predict_fn(x), dtype=np.float32)
        return np.asarray(keras_predict(self.model, x, batch_size), dtype=np.float32)


class ModelFormat(Protocol):
    """A model format edgekit reads."""

    name: str
    description: str

    def detect(self, path: Path) -> bool: ...

    def load(self, path: Path, trust: bool, **options: Any) -> ModelHandle: ...


MODEL_FORMATS: Registry[ModelFormat] = Registry("model format")


def from_keras(model: Any, path: str | None = None) -> ModelHandle:
    """A handle around an in-memory tf_keras model."""
    if not hasattr(model, "input_shape") or not hasattr(model, "predict"):
        raise UsageError(f"Expected a Keras model or a model file path. Received: {type(model).__name__}.")
    ins = [TensorSpec(getattr(t, "name", f"input_{i}"), tuple(t.shape[1:]), t.dtype.name if hasattr(t.dtype, "name")
                      else str(t.dtype)) for i, t in enumerate(model.inputs)] if getattr(model, "inputs", None) else \
        [TensorSpec("input", tuple(model.input_shape[1:]))]
    outs = [TensorSpec(getattr(t, "name", f"output_{i}"), tuple(t.shape[1:])) for i, t in enumerate(model.outputs)] \
        if getattr(model, "outputs", None) else [TensorSpec("output", tuple(model.output_shape[1:]))]
    return ModelHandle(model=model, format=vocab.FORMAT_TF_KERAS, framework="tf_keras", layout=vocab.NHWC,
                       inputs=ins, outputs=outs, path=path)


def _shape_hint(want: tuple[int | None, ...], have: tuple[int, ...]) -> str:
    """What to do about a (H, W, C) mismatch: channels-first images, or another channel count."""
    if len(want) != 3 or len(have) != 3:
        return ""
    if have[0] in (1, 3) and have[0] != have[2] and (have[1], have[2], have[0]) == tuple(
            v if v is not None else h for v, h in zip(want, (have[1], have[2], have[0]))):
        return (": the images are channels-first (C, H, W) but edgekit datasets hold (H, W, C) images; "
                "save them as (N, H, W, C) (edgekit transposes for NCHW models itself)")
    if want[:2] == have[:2] or all(w is None for w in want[:2]):
        return (f": the model takes {want[2]} channel(s), the images have {have[2]}; give images with "
                f"{want[2]} channel(s) (e.g. an images:DIR folder of {'RGB' if want[2] == 3 else 'greyscale'} "
                f"files or an npz:FILE of (N, H, W, {want[2]}) arrays) or a model that takes {have[2]}")
    return ""


def check_fits(handle: ModelHandle | Any, dataset: Any) -> None:
    """InputError naming both shapes when the model's input or output does not fit the dataset."""
    h = handle if isinstance(handle, ModelHandle) else from_keras(handle)
    want = tuple(int(d) if d is not None else None for d in h.input_shape)
    have = tuple(dataset.info.input_shape)
    if len(want) != len(have) or any(w is not None and w != v for w, v in zip(want, have)):
        raise InputError(f"Model input shape {want} does not fit dataset images {have}{_shape_hint(want, have)}.")
    classes = h.num_outputs
    if classes and classes < dataset.info.num_classes:
        raise InputError(f"Model predicts {classes} classes but the dataset has {dataset.info.num_classes}.")
