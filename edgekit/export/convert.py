"""Keras -> TFLite flatbuffer conversion, shared by the export targets and the compression report."""
from __future__ import annotations

import warnings
from typing import Iterable, Sequence

import numpy as np

from edgekit.errors import InputError, UsageError
from edgekit.runtimes.base import quiet_native_output

TFLITE_MODES = ("float32", "fp16", "dynamic", "int8")


def to_tflite(model, mode: str = "float32", representative: np.ndarray | None = None, *,
              batch_size: int | None = None, keep_float: Sequence[str] = (), int16: Sequence[str] = ()) -> bytes:
    """Convert a tf_keras model to a .tflite flatbuffer.

    ``mode``: ``float32``; ``fp16`` (float16 weights); ``dynamic`` (int8 weights, float
    activations); ``int8`` (full integer incl. int8 input/output; needs ``representative``
    images, which a QAT model uses only to confirm its learned ranges).
    ``batch_size``: fix the batch dimension (static shapes, as the Edge TPU compiler and
    TFLite Micro want); ``None`` keeps it dynamic.
    ``keep_float``: ``int8`` only: Keras layers whose ops stay float32 (their int8 inputs are
    dequantized before them and their outputs quantized after), see :func:`_int8_keep_float`.
    ``int16``: ``int8`` only: Keras layers whose ops get 16-bit activations and 8-bit weights
    (ai-edge-quantizer on the float32 flatbuffer, :mod:`edgekit.export.int16`).
    """
    from edgekit._lazy import tf

    tf_ = tf()
    if mode not in TFLITE_MODES:
        raise UsageError(f"Unknown TFLite mode {mode!r}. Expected one of: {', '.join(TFLITE_MODES)}.")
    if int16:
        return _int8_int16(model, mode, representative, batch_size, keep_float, int16)
    if batch_size is None:
        conv = tf_.lite.TFLiteConverter.from_keras_model(model)
    else:
        spec = tf_.TensorSpec((batch_size, *model.input_shape[1:]), tf_.float32, name="image")
        fn = tf_.function(lambda x: model(x, training=False)).get_concrete_function(spec)
        conv = tf_.lite.TFLiteConverter.from_concrete_functions([fn], model)
    return _convert(conv, mode, representative, model, keep_float)


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


def _convert(conv, mode: str, representative: np.ndarray | None, model=None,
             keep_float: Sequence[str] = ()) -> bytes:
    """Apply ``mode``'s converter settings and convert (``keep_float``: layers of the Keras
    ``model`` left in float, full int8 only)."""
    from edgekit._lazy import tf

    tf_ = tf()
    if mode != "float32":
        conv.optimizations = [tf_.lite.Optimize.DEFAULT]
    if mode == "fp16":
        conv.target_spec.supported_types = [tf_.float16]
    elif mode == "int8":
        if representative is None or len(representative) == 0:
            raise UsageError("Full-int8 TFLite needs a representative dataset (calibration images).")
        check_finite(representative)
        conv.representative_dataset = _representative(representative)
        conv.target_spec.supported_ops = [tf_.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf_.int8
        conv.inference_output_type = tf_.int8
        if keep_float:
            return _int8_keep_float(conv, model, keep_float)
    elif keep_float:
        raise UsageError(f"keep_float applies to full-int8 TFLite only. Received: mode {mode!r}.")
    return _quietly(conv.convert)


def _int8_int16(model, mode: str, representative: np.ndarray | None, batch_size: int | None,
                keep_float: Sequence[str], int16: Sequence[str]) -> bytes:
    """Full int8 with ``int16`` layers at 16-bit activations (the checks, then ai-edge-quantizer)."""
    from edgekit.export.int16 import int16_tflite, require_int16

    if mode != "int8":
        raise UsageError(f"int16 (16-bit activations) applies to full-int8 TFLite only. Received: mode {mode!r}.")
    if keep_float:
        raise UsageError(f"Give int16 or keep_float for a tflite-int8 export, not both. Received: int16 "
                         f"{', '.join(int16)} and keep_float {', '.join(keep_float)}.")
    if representative is None or len(representative) == 0:
        raise UsageError("Full-int8 TFLite needs a representative dataset (calibration images).")
    check_finite(representative)
    require_int16()  # before the float conversion: the one-line install hint comes first
    return int16_tflite(to_tflite(model, "float32", batch_size=batch_size), model, representative, int16)


def _quietly(convert) -> bytes:
    """``convert()``'s bytes without the converter's "fully_quantize: ..." lines and warnings."""
    with warnings.catch_warnings(), quiet_native_output():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return bytes(convert())


def _int8_keep_float(conv, model, keep_float: Sequence[str]) -> bytes:
    """Full int8 with the ops of ``keep_float`` (Keras layer names) left in float32.

    TF 2.21's converter has no public option for this; the mechanism the quantization
    debugger uses works: calibrate only (``_experimental_calibrate_only``), then quantize
    the calibrated float model with ``denylisted_nodes`` (the ops' output tensor names,
    found from the Keras layer names by :mod:`edgekit.export.layermap`).
    """
    from tensorflow.lite.python import convert as tfl_convert

    from edgekit._lazy import tf
    from edgekit.formats.tflite_flatbuffer import read_tflite
    from edgekit.export.layermap import groups_of_graph, select_groups

    tf_ = tf()
    conv._experimental_calibrate_only = True
    calibrated = _quietly(conv.convert)
    groups = select_groups(groups_of_graph(model, read_tflite(calibrated)), keep_float, model, "keep_float")
    return _quietly(lambda: tfl_convert.mlir_quantize(
        calibrated, fully_quantize=True, input_data_type=tf_.int8, output_data_type=tf_.int8,
        denylisted_nodes=[g.tensor for g in groups]))


def check_finite(calibration: np.ndarray) -> None:
    """InputError when calibration images hold NaN or inf: the TF 2.21 int8 converter segfaults on
    them (tensorflow/tensorflow#120295) instead of raising, so they are refused before it runs."""
    bad = int(np.size(calibration) - np.count_nonzero(np.isfinite(calibration)))
    if bad:
        raise InputError(f"The calibration images hold {bad:,} NaN or infinite values; int8 calibration needs finite "
                         "pixels. Clean the dataset (e.g. np.nan_to_num) and export again. "
                         f"Received: {len(calibration)} images.")


def _representative(x: np.ndarray):
    def gen() -> Iterable[list[np.ndarray]]:
        for i in range(len(x)):
            yield [x[i : i + 1].astype(np.float32)]
    return gen
