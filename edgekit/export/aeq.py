"""ai-edge-quantizer plumbing shared by the targets it builds (``--int16`` layers of tflite-int8,
tflite-int4): the lazy import with its one-line install hint, and calibration + quantization of a
float32 flatbuffer whose recipe is set, on representative images."""
from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np

from edgekit.errors import UsageError

INSTALL = "pip install 'edgekit[quantizer]'"
SIGNATURE = "serving_default"


def require_quantizer(what: str) -> Any:
    """The ``ai_edge_quantizer.quantizer`` module, or a one-line UsageError (``what``) saying how to install it."""
    try:
        import ai_edge_quantizer.quantizer as aeq
    except ImportError:
        raise UsageError(f"{what}: {INSTALL}.") from None
    return aeq


def calibrate_and_quantize(qt: Any, float_tflite: bytes, representative: np.ndarray) -> bytes:
    """The flatbuffer ``qt`` (an ai-edge-quantizer Quantizer of ``float_tflite`` with its recipe
    set) writes after calibrating on ``representative`` images one at a time, quietly."""
    from edgekit.runtimes.base import quiet_native_output

    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()), quiet_native_output():
        key, name = _signature_input(float_tflite)
        samples = [{name: representative[i : i + 1].astype(np.float32)} for i in range(len(representative))]
        calibration = qt.calibrate({key: samples}, num_threads=1)
        return bytes(qt.quantize(calibration, enable_progress_report=False).quantized_model)


def make_quantizer(aeq: Any, float_tflite: bytes) -> tuple[Any, bytes]:
    """``(Quantizer, the flatbuffer it quantizes)``: ``float_tflite`` with a signature added when it
    has none (converted from ONNX, say), because the calibration feeds the model by signature."""
    from edgekit.formats.tflite_flatbuffer import with_signature

    data = with_signature(float_tflite, SIGNATURE)
    return aeq.Quantizer(bytearray(data)), data


def _signature_input(data: bytes) -> tuple[str, str]:
    """(signature key, input name) the calibration feeds: ``serving_default``, else the first."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=data)
    keys = list(it.get_signature_list())
    key = SIGNATURE if SIGNATURE in keys else keys[0]
    return key, next(iter(it.get_signature_runner(key).get_input_details()))
