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
        name = _input_name(float_tflite)
        samples = [{name: representative[i : i + 1].astype(np.float32)} for i in range(len(representative))]
        calibration = qt.calibrate({SIGNATURE: samples}, num_threads=1)
        return bytes(qt.quantize(calibration, enable_progress_report=False).quantized_model)


def _input_name(data: bytes) -> str:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=data).get_signature_runner(SIGNATURE)
    return next(iter(runner.get_input_details()))
