"""``edgekit inspect FILE.onnx --ops``: the per-node table of an .onnx file, from its protobuf alone.

The file is parsed without its external data (:func:`edgekit.models.onnx_format.read_onnx`);
nothing runs it. Shapes come from the graph's declarations plus ONNX shape inference, which is
native code and so runs in a child process with a timeout (``python -m
edgekit.models.inspect_onnx PATH`` prints the inferred ``{tensor: [dtype, dims]}`` as JSON); when
it fails, the declared shapes are used. A node of a QDQ graph shows the scale and zero point of
the QuantizeLinear/DequantizeLinear pair on each of its tensors.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

INFER_TIMEOUT_S = 60
SHOWN_CHANNELS = 8  # per-channel scales listed in the report (the count is always given)
QLINEAR = {"QLinearConv": ((0, 1, 2), (3, 4, 5), (6, 7)), "QLinearMatMul": ((0, 1, 2), (3, 4, 5), (6, 7))}

Shapes = dict[str, tuple[str | None, list[int | str | None]]]


def _s(text: str | bytes) -> str:
    """A protobuf string field as text (a damaged file can hold bytes that are not UTF-8)."""
    return text if isinstance(text, str) else text.decode("utf-8", "replace")


def _dtype(elem_type: int) -> str | None:
    """numpy-style name of an ONNX element type (None when unset or unknown)."""
    from onnx import helper

    try:
        return helper.tensor_dtype_to_np_dtype(elem_type).name if elem_type else None
    except Exception:  # a type numpy has no name for (e.g. float8)
        return None


def declared_shapes(graph: Any) -> Shapes:
    """``{tensor: (dtype, dims)}`` of the graph's inputs, outputs, value_info and initializers."""
    out: Shapes = {}
    for v in list(graph.input) + list(graph.value_info) + list(graph.output):
        tt = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else (_s(d.dim_param) or None) for d in tt.shape.dim]
        out[_s(v.name)] = (_dtype(tt.elem_type), dims if tt.HasField("shape") else [])
    for t in graph.initializer:
        out[_s(t.name)] = (_dtype(t.data_type), [int(d) for d in t.dims])
    return out


def inferred_shapes(path: Path) -> tuple[Shapes, str | None]:
    """ONNX shape inference of ``path`` in a child process: (shapes, None) or ({}, why it failed)."""
    from edgekit.runtimes.child_env import child_env

    cmd = [sys.executable, "-m", "edgekit.models.inspect_onnx", str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=INFER_TIMEOUT_S,
                              env=child_env())
    except subprocess.TimeoutExpired:
        return {}, f"shape inference did not finish within {INFER_TIMEOUT_S}s"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1][:160]
        return {}, f"shape inference failed: {last}"
    try:
        return {k: (v[0], v[1]) for k, v in json.loads(proc.stdout).items()}, None
    except (ValueError, TypeError, IndexError, AttributeError):
        return {}, "shape inference failed: unreadable answer"


def _values(t: Any) -> list[float] | None:
    """The values of a small constant tensor (a scale or zero point); None when not readable."""
    from onnx import numpy_helper

    if len(t.dims) > 1 or (t.dims and t.dims[0] > 1 << 16):
        return None
    try:
        return [v.item() for v in numpy_helper.to_array(t).reshape(-1)]
    except Exception:  # external data not loaded, a damaged raw_data length ...
        return None


def constants(graph: Any) -> dict[str, Any]:
    """``{name: TensorProto}`` of the initializers and Constant nodes' ``value`` tensors."""
    out = {_s(t.name): t for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and n.output:
            for a in n.attribute:
                if a.name == "value" and a.HasField("t"):
                    out[_s(n.output[0])] = a.t
    return out


def quant_params(graph: Any, consts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{tensor: {"scale", "zero_point"[, "channels"]}}`` for every tensor a Q/DQ or QLinear node quantizes."""
    def params(names: list[str], s: int, z: int) -> dict[str, Any] | None:
        scale = _values(consts[names[s]]) if s < len(names) and names[s] in consts else None
        if not scale:
            return None
        zp = _values(consts[names[z]]) if z < len(names) and names[z] in consts else None
        q: dict[str, Any] = {"scale": scale[:SHOWN_CHANNELS], "zero_point": (zp or [0])[:SHOWN_CHANNELS]}
        if len(scale) > 1:
            q["channels"] = len(scale)
        return q

    out: dict[str, dict[str, Any]] = {}
    for n in graph.node:
        names = [_s(t) for t in n.input]
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            q = params(names, 1, 2)
            if q:
                out.update({t: q for t in (*names[:1], *map(_s, n.output[:1])) if t})
        elif n.op_type in QLINEAR:
            (a, b, y) = QLINEAR[n.op_type]
            for i, s, z in (a, b):
                if (q := params(names, s, z)) and i < len(names):
                    out.setdefault(names[i], q)
            if (q := params(names, *y)) and n.output:
                out.setdefault(_s(n.output[0]), q)
    return out


def _tensor(name: str, shapes: Shapes, consts: dict[str, Any], quant: dict[str, dict[str, Any]]) -> dict[str, Any]:
    dtype, dims = shapes.get(name, (None, None))
    return {"name": name, "shape": dims, "dtype": dtype, "constant": name in consts, "quantization": quant.get(name)}


def inspect_onnx(path: Path) -> dict[str, Any]:
    """The report of an .onnx file: graph inputs/outputs, per-node table, op counts (see the module docstring)."""
    from edgekit.models.onnx_format import read_onnx

    proto = read_onnx(path)
    g = proto.graph
    shapes = declared_shapes(g)
    inferred, note = inferred_shapes(path)
    shapes.update({k: v for k, v in inferred.items() if k not in shapes or not shapes[k][1]})
    consts = constants(g)
    quant = quant_params(g, consts)
    init = {_s(t.name) for t in g.initializer}
    nodes = []
    for i, n in enumerate(g.node):
        ins = [_tensor(_s(t), shapes, consts, quant) for t in n.input if t]
        outs = [_tensor(_s(t), shapes, consts, quant) for t in n.output if t]
        nodes.append({"index": i, "name": _s(n.name), "op": _s(n.op_type), "domain": _s(n.domain) or "ai.onnx",
                      "inputs": ins, "outputs": outs,
                      "quantized": any(t["quantization"] for t in ins + outs)})
    counts: dict[str, int] = {}
    for n in nodes:
        counts[n["op"]] = counts.get(n["op"], 0) + 1
    report: dict[str, Any] = {
        "path": str(path), "format": "onnx", "bytes": path.stat().st_size, "ir_version": int(proto.ir_version),
        "opset": {(_s(o.domain) or "ai.onnx"): int(o.version) for o in proto.opset_import},
        "producer": f"{_s(proto.producer_name)} {_s(proto.producer_version)}".strip(),
        "inputs": [_tensor(_s(v.name), shapes, consts, quant) for v in g.input if _s(v.name) not in init],
        "outputs": [_tensor(_s(v.name), shapes, consts, quant) for v in g.output],
        "op_counts": counts, "ops": nodes,
        "quantized_nodes": sum(n["quantized"] for n in nodes if n["op"] not in ("QuantizeLinear", "DequantizeLinear")),
    }
    if note:
        report["shapes_note"] = note
    return report


def _infer_main(path: str) -> int:
    """Child process: print ONNX shape inference of ``path`` as ``{tensor: [dtype, dims]}`` JSON."""
    import onnx

    proto = onnx.load(path, load_external_data=False)
    g = onnx.shape_inference.infer_shapes(proto, check_type=False, strict_mode=False).graph
    shapes = declared_shapes(g)
    print(json.dumps({k: [v[0], v[1]] for k, v in shapes.items() if k not in {_s(t.name) for t in g.initializer}}))
    return 0


if __name__ == "__main__":
    sys.exit(_infer_main(sys.argv[1]))
