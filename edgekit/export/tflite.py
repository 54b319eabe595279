"""TFLite targets: tflite (float32), tflite-fp16, tflite-dynamic, tflite-int8 (full integer)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.artifacts import write_bytes
from edgekit.export.base import ExportContext, ExportedFile, TargetOutput, target
from edgekit.export.convert import to_tflite
from edgekit.export.flatbuffer import read_tflite

FILES = {
    "tflite": "model_float32.tflite",
    "tflite-fp16": "model_fp16.tflite",
    "tflite-dynamic": "model_dynamic.tflite",
    "tflite-int8": "model_int8.tflite",
}


def tflite_bytes(ctx: ExportContext, mode: str, batch_size: int | None = None) -> bytes:
    """The flatbuffer for ``mode``, converted once per export call."""
    def make() -> bytes:
        ctx.progress(f"converting to TFLite {mode}" + (f" (batch {batch_size})" if batch_size else ""))
        rep = ctx.calibration(f"tflite-{mode}") if mode == "int8" else None
        return to_tflite(ctx.model, mode, rep, batch_size=batch_size)

    return ctx.cached(f"tflite:{mode}:{batch_size}", make)


def describe(data: bytes) -> dict[str, Any]:
    """Facts of a flatbuffer for the export report: ops, dtypes, parameter bytes."""
    g = read_tflite(data)
    return {
        "bytes": len(data),
        "ops": g.op_counts(),
        "input": [{"dtype": t.dtype, "shape": list(t.shape_signature), "scale": list(t.scale),
                   "zero_point": list(t.zero_point)} for t in g.input_tensors],
        "output": [{"dtype": t.dtype, "shape": list(t.shape_signature), "scale": list(t.scale),
                    "zero_point": list(t.zero_point)} for t in g.output_tensors],
        "weight_dtypes": sorted(g.dtypes(constant=True)),
        "activation_dtypes": sorted(g.dtypes(constant=False)),
        "parameter_bytes": g.parameter_bytes(),
    }


def _build(mode: str):
    def build(ctx: ExportContext, stage: Path, spec) -> TargetOutput:
        data = tflite_bytes(ctx, mode)
        name = FILES[spec.name]
        write_bytes(stage / name, data)
        return TargetOutput(spec.name, [ExportedFile(name, "tflite")], name, spec.runtime, describe(data))

    return build


target("tflite", description="TFLite float32 (the reference-exact flatbuffer)",
       needs="nothing", runtime="litert", exact=True, files=(FILES["tflite"],))(_build("float32"))
target("tflite-fp16", description="TFLite with float16 weights (half the size, float compute)",
       needs="nothing", runtime="litert", exact=False, files=(FILES["tflite-fp16"],))(_build("fp16"))
target("tflite-dynamic", description="TFLite dynamic range: int8 weights, float activations",
       needs="nothing", runtime="litert", exact=False, files=(FILES["tflite-dynamic"],))(_build("dynamic"))
target("tflite-int8", description="TFLite full integer: int8 weights, activations, input and output",
       needs="calibration images (--representative-samples from the training split)", runtime="litert",
       exact=False, files=(FILES["tflite-int8"],), quantized=True)(_build("int8"))
