"""Keras -> TFLite flatbuffer conversion, shared by the export targets and the compression report."""
from __future__ import annotations

import warnings
from typing import Iterable

import numpy as np

from edgekit.errors import UsageError
from edgekit.runtimes.base import quiet_native_output

TFLITE_MODES = ("float32", "fp16", "dynamic", "int8")


def to_tflite(model, mode: str = "float32", representative: np.ndarray | None = None, *,
              batch_size: int | None = None) -> bytes:
    """Convert a tf_keras model to a .tflite flatbuffer.

    ``mode``: ``float32``; ``fp16`` (float16 weights); ``dynamic`` (int8 weights, float
    activations); ``int8`` (full integer incl. int8 input/output; needs ``representative``
    images, which a QAT model uses only to confirm its learned ranges).
    ``batch_size``: fix the batch dimension (static shapes, as the Edge TPU compiler and
    TFLite Micro want); ``None`` keeps it dynamic.
    """
    from edgekit._lazy import tf

    tf_ = tf()
    if mode not in TFLITE_MODES:
        raise UsageError(f"Unknown TFLite mode {mode!r}. Expected one of: {', '.join(TFLITE_MODES)}.")
    if batch_size is None:
        conv = tf_.lite.TFLiteConverter.from_keras_model(model)
    else:
        spec = tf_.TensorSpec((batch_size, *model.input_shape[1:]), tf_.float32, name="image")
        fn = tf_.function(lambda x: model(x, training=False)).get_concrete_function(spec)
        conv = tf_.lite.TFLiteConverter.from_concrete_functions([fn], model)
    return _convert(conv, mode, representative)


def graph_to_tflite(graph, mode: str = "float32", representative: np.ndarray | None = None, *,
                    batch_size: int | None = None) -> bytes:
    """:func:`to_tflite` for a :class:`~edgekit.models.layout.TfGraph` (``handle.tf_graph()``: a
    SavedModel, an ONNX file through onnx_to_tf, a Keras 3 model without a tf_keras translation)."""
    from edgekit._lazy import tf

    if mode not in TFLITE_MODES:
        raise UsageError(f"Unknown TFLite mode {mode!r}. Expected one of: {', '.join(TFLITE_MODES)}.")
    cf = graph.concrete(batch_size)
    conv = tf().lite.TFLiteConverter.from_concrete_functions([cf], graph.trackable) if graph.trackable is not None \
        else tf().lite.TFLiteConverter.from_concrete_functions([cf])
    return _convert(conv, mode, representative)


def _convert(conv, mode: str, representative: np.ndarray | None) -> bytes:
    """Apply ``mode``'s converter settings and convert."""
    from edgekit._lazy import tf

    tf_ = tf()
    if mode != "float32":
        conv.optimizations = [tf_.lite.Optimize.DEFAULT]
    if mode == "fp16":
        conv.target_spec.supported_types = [tf_.float16]
    elif mode == "int8":
        if representative is None or len(representative) == 0:
            raise UsageError("Full-int8 TFLite needs a representative dataset (calibration images).")
        conv.representative_dataset = _representative(representative)
        conv.target_spec.supported_ops = [tf_.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf_.int8
        conv.inference_output_type = tf_.int8
    with warnings.catch_warnings(), quiet_native_output():  # the converter's "fully_quantize: ..." lines
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return bytes(conv.convert())


def _representative(x: np.ndarray):
    def gen() -> Iterable[list[np.ndarray]]:
        for i in range(len(x)):
            yield [x[i : i + 1].astype(np.float32)]
    return gen
