"""TFLite targets: tflite (float32), tflite-fp16, tflite-dynamic, tflite-int8 (full integer)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.artifacts import write_bytes
from edgekit.export.base import ExportContext, ExportedFile, TargetOutput, target
from edgekit.errors import EdgekitError, InputError, UsageError, first_line
from edgekit.export.convert import graph_to_tflite, to_tflite
from edgekit.formats.tflite_flatbuffer import read_tflite
from edgekit.vocab import LITERT, TFLITE, TFLITE_DYNAMIC, TFLITE_FP16, TFLITE_INT8

FILES = {
    TFLITE: "model_float32.tflite",
    TFLITE_FP16: "model_fp16.tflite",
    TFLITE_DYNAMIC: "model_dynamic.tflite",
    TFLITE_INT8: "model_int8.tflite",
}


def tflite_bytes(ctx: ExportContext, mode: str, batch_size: int | None = None,
                 keep_float: tuple[str, ...] = (), int16: tuple[str, ...] = ()) -> bytes:
    """The flatbuffer for ``mode``, converted once per export call."""
    def make() -> bytes:
        ctx.progress(f"converting to TFLite {mode}" + (f" (batch {batch_size})" if batch_size else "")
                     + (f" (float: {', '.join(keep_float)})" if keep_float else "")
                     + (f" (16-bit activations: {', '.join(int16)})" if int16 else ""))
        rep = ctx.calibration(f"tflite-{mode}") if mode == "int8" else None
        if ctx.model is not None:  # a tf_keras model: today's path
            return to_tflite(ctx.model, mode, rep, batch_size=batch_size, keep_float=keep_float, int16=int16)
        if keep_float or int16:
            raise UsageError(f"{'keep_float' if keep_float else 'int16'} needs a Keras model (its layer names); the "
                             f"{ctx.handle.format} model has none.")
        graph = ctx.handle.tf_graph()
        try:
            return graph_to_tflite(graph, mode, rep, batch_size=batch_size)
        except EdgekitError:
            raise
        except Exception as e:
            raise InputError(f"The TFLite converter could not convert the {ctx.handle.format} model to {mode}: "
                             f"{first_line(e)}") from None

    return ctx.cached(f"tflite:{mode}:{batch_size}:{','.join(keep_float)}:{','.join(int16)}", make)


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
        int8 = mode == "int8"  # edgetpu/micro stay all-int8
        data = tflite_bytes(ctx, mode, keep_float=ctx.config.keep_float if int8 else (),
                            int16=ctx.config.int16 if int8 else ())
        name = FILES[spec.name]
        write_bytes(stage / name, data)
        return TargetOutput(spec.name, [ExportedFile(name, "tflite")], name, spec.runtime, describe(data))

    return build


target(TFLITE, description="TFLite float32 (the reference-exact flatbuffer)",
       needs="nothing", runtime=LITERT, exact=True, files=(FILES[TFLITE],))(_build("float32"))
target(TFLITE_FP16, description="TFLite with float16 weights (half the size, float compute)",
       needs="nothing", runtime=LITERT, exact=False, files=(FILES[TFLITE_FP16],))(_build("fp16"))
target(TFLITE_DYNAMIC, description="TFLite dynamic range: int8 weights, float activations",
       needs="nothing", runtime=LITERT, exact=False, files=(FILES[TFLITE_DYNAMIC],))(_build("dynamic"))
target(TFLITE_INT8, description="TFLite full integer: int8 weights, activations, input and output",
       needs="calibration images (--representative-samples from the training split)", runtime=LITERT,
       exact=False, files=(FILES[TFLITE_INT8],), quantized=True)(_build("int8"))
