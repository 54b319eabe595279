"""``edgekit inspect FILE.tflite``: the per-op table of a .tflite file, from its flatbuffer alone.

Nothing runs the model: :func:`edgekit.formats.tflite_flatbuffer.read_tflite` parses it in Python
(a damaged file is one InputError line). Per op: its tensors (shape, dtype, quantization scale and
zero point), multiply-accumulates of convolutions and fully-connected layers, the bytes of its
activations, and whether the Edge TPU compiler would map it (:mod:`edgekit.export.edgetpu`).
"""
from __future__ import annotations

import math
from typing import Any

from edgekit.formats.tflite_flatbuffer import OpInfo, TensorInfo, TFLiteGraph, read_tflite

DTYPE_BYTES: dict[str, float] = {
    "float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "uint64": 8, "int32": 4, "uint32": 4,
    "int16": 2, "uint16": 2, "int8": 1, "uint8": 1, "bool": 1, "int4": 0.5, "complex64": 8, "complex128": 16,
}
MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "TRANSPOSE_CONV")
SHOWN_CHANNELS = 8  # per-channel scales listed in the report (the count is always given)
PEAK_RULE = ("estimate: the bytes of one op's activation inputs plus its outputs (shape x dtype size, "
             "constants left out); the interpreter's arena may hold more (scratch buffers, tensors still live "
             "for later ops) or reuse buffers")


def tensor_bytes(t: TensorInfo) -> int:
    """Bytes of ``t`` from its shape and dtype (0 for a dtype of no fixed size, e.g. string)."""
    return math.ceil(math.prod(max(d, 0) for d in t.shape) * DTYPE_BYTES.get(t.dtype, 0))


def quantization(t: TensorInfo) -> dict[str, Any] | None:
    """``{"scale": [...], "zero_point": [...]}`` of a quantized tensor (``channels`` when per-channel)."""
    if not t.scale:
        return None
    q: dict[str, Any] = {"scale": list(t.scale[:SHOWN_CHANNELS]), "zero_point": list(t.zero_point[:SHOWN_CHANNELS])}
    if len(t.scale) > 1:
        q["channels"] = len(t.scale)
    return q


def tensor_row(t: TensorInfo) -> dict[str, Any]:
    """One tensor of the report: index, name, shape, dtype, bytes, constant, quantization."""
    return {"index": t.index, "name": t.name, "shape": list(t.shape), "dtype": t.dtype, "bytes": tensor_bytes(t),
            "constant": t.is_constant, "quantization": quantization(t)}


def op_macs(g: TFLiteGraph, op: OpInfo) -> int:
    """Multiply-accumulates of ``op`` (0 for ops that do none): each output element of a CONV_2D
    (filter O x kh x kw x I) takes kh*kw*I, of a DEPTHWISE_CONV_2D (1 x kh x kw x C) kh*kw, of a
    FULLY_CONNECTED (units x K) K, of a BATCH_MATMUL the inner size, of a TRANSPOSE_CONV (O x kh x kw x I)
    counted per input element: kh*kw*O."""
    if op.op not in MAC_OPS or len(op.outputs) < 1 or len(op.inputs) < 2 or min(op.inputs[:2] + op.outputs[:1]) < 0:
        return 0
    if op.op == "TRANSPOSE_CONV":  # inputs: output shape, filter, input
        if len(op.inputs) < 3 or op.inputs[2] < 0:
            return 0
        w, x = g.tensor(op.inputs[1]).shape, g.tensor(op.inputs[2]).shape
        return math.prod(x) * math.prod(w[:3]) if len(w) == 4 else 0
    out = math.prod(g.tensor(op.outputs[0]).shape)
    w = g.tensor(op.inputs[1]).shape
    if op.op == "CONV_2D":
        return out * math.prod(w[1:])
    if op.op == "DEPTHWISE_CONV_2D":
        return out * math.prod(w[1:3])
    if op.op == "FULLY_CONNECTED":
        return out * (w[-1] if w else 0)
    a = g.tensor(op.inputs[0]).shape  # BATCH_MATMUL: (..., M, K) x (..., K, N)
    adj_x = bool(op.options.get("adjX", False))
    return out * (a[-2] if adj_x and len(a) > 1 else a[-1] if a else 0)


def graph_macs(g: TFLiteGraph) -> int:
    """Multiply-accumulates of the whole graph (per image for a batch-1 graph)."""
    return sum(op_macs(g, op) for op in g.ops)


def _edgetpu(data: bytes) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """The Edge TPU analysis (summary, per-op verdicts) of the same flatbuffer."""
    from edgekit.export.edgetpu import analyze_edgetpu

    a = analyze_edgetpu(data)
    summary = {k: v for k, v in a.to_dict().items() if k not in ("ops", "reference")}
    return summary, {v.index: {"mapped": v.mapped, "reason": v.reason} for v in a.ops}


def op_row(g: TFLiteGraph, op: OpInfo, tpu: dict[str, Any] | None) -> dict[str, Any]:
    """One op of the report (see the module docstring)."""
    ins = [g.tensor(i) for i in op.inputs if i >= 0]
    outs = [g.tensor(i) for i in op.outputs if i >= 0]
    acts = [t for t in ins if not t.is_constant] + outs
    return {"index": op.index, "op": op.op, "version": op.version,
            "inputs": [tensor_row(t) for t in ins if not t.is_constant],
            "constants": [tensor_row(t) for t in ins if t.is_constant],
            "outputs": [tensor_row(t) for t in outs],
            "macs": op_macs(g, op), "activation_bytes": sum(tensor_bytes(t) for t in acts), "edgetpu": tpu}


def inspect_tflite(data: bytes, path: str | None = None) -> dict[str, Any]:
    """The report of a .tflite flatbuffer (bytes): tensors, per-op table, totals, peak op, Edge TPU."""
    g = read_tflite(data, what=repr(path) if path else "model")
    try:
        edgetpu, verdicts = _edgetpu(data)
    except Exception as e:  # the analysis needs what the parse does not check (it never runs anything)
        edgetpu, verdicts = {"summary": f"no Edge TPU analysis: {str(e).splitlines()[0][:160] if str(e) else type(e).__name__}"}, {}
    ops = [op_row(g, op, verdicts.get(op.index)) for op in g.ops]
    peak = max(ops, key=lambda r: r["activation_bytes"], default=None)
    return {
        "path": path, "format": "tflite", "bytes": len(data), "subgraphs": g.num_subgraphs,
        "inputs": [tensor_row(t) for t in g.input_tensors], "outputs": [tensor_row(t) for t in g.output_tensors],
        "op_counts": g.op_counts(), "macs": sum(r["macs"] for r in ops), "parameter_bytes": g.parameter_bytes(),
        "ops": ops,
        "peak": None if peak is None else {"index": peak["index"], "op": peak["op"],
                                           "activation_bytes": peak["activation_bytes"], "how": PEAK_RULE},
        "edgetpu": edgetpu,
    }
