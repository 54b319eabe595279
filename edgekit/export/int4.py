"""tflite-int4: 4-bit weights (per output channel, symmetric) with int8 activations, for LiteRT.

TF 2.21's converter writes no int4 weights; ai-edge-quantizer (``pip install
'edgekit[quantizer]'``) does. The float32 flatbuffer is quantized static int8 everywhere (``.*``),
then a8w4 on every CONV_2D and FULLY_CONNECTED (0.10.0 has no a8w4 DEPTHWISE_CONV_2D kernel: those
keep int8 weights), calibrated on the representative images like tflite-int8; the model input and
output stay int8. LiteRT (XNNPACK and its built-in kernels) runs it; TFLite Micro and the Edge TPU
compiler do not (docs/compress.md), so micro and edgetpu stay int8 targets.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.artifacts import write_bytes
from edgekit.errors import UsageError
from edgekit.export.base import ExportContext, ExportedFile, TargetOutput, target
from edgekit.vocab import LITERT, TFLITE_INT4

FILE = "model_int4.tflite"
NEEDS = f"{TFLITE_INT4} needs ai-edge-quantizer (4-bit weights)"
INT4_OPS = ("CONV_2D", "FULLY_CONNECTED")  # the ops ai-edge-quantizer 0.10.0 gives int4 weights with int8 activations


def int4_tflite(float_tflite: bytes, representative: np.ndarray) -> bytes:
    """Int8 activations (int8 input/output) with int4 weights in :data:`INT4_OPS`, calibrated on
    ``representative`` images; UsageError when the model has no such op with constant weights."""
    from edgekit.export.convert import check_finite
    from edgekit.export.aeq import calibrate_and_quantize, make_quantizer, require_quantizer

    check_finite(representative)
    aeq = require_quantizer(NEEDS)
    from ai_edge_quantizer import qtyping

    ops = qtyping.TFLOperationName
    qt, float_tflite = make_quantizer(aeq, float_tflite)
    qt.add_static_config(".*", ops.ALL_SUPPORTED, activation_num_bits=8, weight_num_bits=8)
    for op in INT4_OPS:
        qt.add_static_config(".*", ops[op], activation_num_bits=8, weight_num_bits=4)
    data = calibrate_and_quantize(qt, float_tflite, representative)
    if not int4_weights(data):
        from edgekit.formats.tflite_flatbuffer import read_tflite

        ops_found = ", ".join(sorted(read_tflite(float_tflite).op_counts()))
        raise UsageError(f"{TFLITE_INT4}: the model has no Conv2D or Dense kernel to store in 4 bits (only "
                         f"{', '.join(INT4_OPS)} get int4 weights); export tflite-int8 instead. "
                         f"Received: ops {ops_found}.")
    return data


def int4_weights(data: bytes) -> list[str]:
    """Names of the int4 constant tensors of a flatbuffer."""
    from edgekit.formats.tflite_flatbuffer import read_tflite

    return [t.name for t in read_tflite(data).tensors if t.is_constant and t.dtype == "int4"]


@target(TFLITE_INT4, description="TFLite int4 weights (per channel) with int8 activations, input and output "
        "(LiteRT only; not TFLite Micro or the Edge TPU)",
        needs="calibration images (--representative-samples) and ai-edge-quantizer (pip install "
        "'edgekit[quantizer]')", runtime=LITERT, exact=False, files=(FILE,), quantized=True)
def build(ctx: ExportContext, stage: Path, spec) -> TargetOutput:
    from edgekit.export.aeq import require_quantizer
    from edgekit.export.tflite import describe, tflite_bytes
    from edgekit.models.qat import is_qat

    rep = ctx.calibration(TFLITE_INT4)
    if ctx.model is not None and is_qat(ctx.model):
        raise UsageError(f"{TFLITE_INT4} takes a float model: a quantization-aware (QAT) model keeps int8 weights in "
                         f"its flatbuffer; export it to tflite-int8, or export the model from before QAT to "
                         f"{TFLITE_INT4}. Received: QAT model {ctx.model.name!r}.")
    require_quantizer(NEEDS)  # before the float conversion: the one-line install hint comes first
    float_tflite = tflite_bytes(ctx, "float32")
    ctx.progress("quantizing to int4 weights, int8 activations (ai-edge-quantizer)")
    data = int4_tflite(float_tflite, rep)
    write_bytes(stage / FILE, data)
    return TargetOutput(spec.name, [ExportedFile(FILE, "tflite")], FILE, spec.runtime, describe(data))
