"""Per-layer error of a quantized .onnx (onnx-int8: static QDQ) against its float Keras model.

tf2onnx names nodes and tensors after the Keras layers (``model/conv_a/BiasAdd``,
``model/relu_a/Relu:0``): each compute node (not a QuantizeLinear/DequantizeLinear) is named by
the layers its name and outputs carry (:func:`edgekit.export.layermap.named_layers`). The tensor
compared with the Keras layer's output is what the next layer sees: the node's output after its
QuantizeLinear -> DequantizeLinear pair (its own output when it stayed float). Those tensors
are added as graph outputs of a copy; tf2onnx computes convolutions in NCHW, so a 4-D tensor
whose NCHW shape is the layer's NHWC output is transposed back. The rows are the same as the
TFLite path's (:mod:`edgekit.diagnose.layers`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np

from edgekit.diagnose.layers import LayerError, _Stats, error_rows, iter_keras_refs
from edgekit.export.layermap import LayerGroup, layer_groups, named_layers

QDQ = ("QuantizeLinear", "DequantizeLinear")


@dataclasses.dataclass(frozen=True)
class OnnxTensor:
    """The tensor read for one group: its name, NCHW or not, and its quantization."""

    name: str
    nchw: bool
    dtype: str  # the QuantizeLinear's integer type, "float32" when the node stayed float
    scale: float | None


def is_quantized(proto: Any) -> bool:
    return any(n.op_type in QDQ or n.op_type.startswith("QLinear") or n.op_type.endswith("Integer")
               for n in proto.graph.node)


def _candidates(proto: Any, order: dict[str, int]) -> dict[str, OnnxTensor]:
    """Key ("node name;outputs", what layermap names it by) -> the tensor the next layer reads."""
    from onnx import numpy_helper

    consumers: dict[str, list[Any]] = {}
    for n in proto.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    inits = {t.name: t for t in proto.graph.initializer}
    found = {}
    for n in proto.graph.node:
        if n.op_type in QDQ or not n.output or not named_layers(";".join([n.name, *n.output]), order):
            continue
        name, dtype, scale = n.output[0], "float32", None
        q = next((c for c in consumers.get(name, []) if c.op_type == "QuantizeLinear"), None)
        dq = next((c for c in consumers.get(q.output[0], []) if c.op_type == "DequantizeLinear"), None) if q else None
        if dq is not None:
            name = dq.output[0]
            if q.input[1] in inits:
                scale = float(numpy_helper.to_array(inits[q.input[1]]).ravel()[0])
            zp = inits.get(q.input[2]) if len(q.input) > 2 else None
            dtype = numpy_helper.to_array(zp).dtype.name if zp is not None else "uint8"
        found[";".join([n.name, *n.output])] = OnnxTensor(name, False, dtype, scale)
    return found


def with_outputs(proto: Any, names: Sequence[str]) -> bytes:
    """A copy of ``proto`` with ``names`` added as graph outputs (types left to onnxruntime)."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    have = {o.name for o in copy.graph.output}
    copy.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names if n not in have)
    return copy.SerializeToString()


def _run(data: bytes | Any, names: Sequence[str], x: np.ndarray) -> list[np.ndarray]:
    """The tensors ``names`` on images ``x`` (64 at a time) of the model bytes ``data`` (or a session)."""
    from edgekit.runtimes.ort import session

    sess = session(data, threads=1) if isinstance(data, (bytes, bytearray)) else data
    feed = sess.get_inputs()[0].name
    parts = [sess.run(list(names), {feed: x[i : i + 64].astype(np.float32)}) for i in range(0, len(x), 64)]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(names))]


def onnx_groups(model: Any, proto: Any, x1: np.ndarray) -> tuple[list[LayerGroup], dict[str, OnnxTensor]]:
    """The Keras layer groups behind the ONNX graph's activations, and the tensor each reads
    (found by name, then by shape after one run on ``x1``)."""
    order = {layer.name: i for i, layer in enumerate(model.layers)}
    cands = _candidates(proto, order)
    shapes = _run(with_outputs(proto, [c.name for c in cands.values()]), [c.name for c in cands.values()], x1)
    graph_out = proto.graph.output[0].name
    tensors, read = [], {}
    for (key, c), got in zip(cands.items(), shapes):
        key = graph_out if c.name == graph_out else key
        named = named_layers(key, order) if key != graph_out else [model.layers[-1].name]
        want = model.get_layer(max(named, key=order.__getitem__)).output_shape
        shape, nchw = list(got.shape), False
        if isinstance(want, tuple) and len(shape) == 4 and list(want[1:]) != shape[1:] \
                and [shape[0], shape[2], shape[3], shape[1]][1:] == list(want[1:]):
            shape, nchw = [shape[0], shape[2], shape[3], shape[1]], True
        tensors.append((key, shape))
        read[key] = dataclasses.replace(c, nchw=nchw)
    groups = layer_groups(model, tensors, [graph_out])
    return groups, {g.tensor: read[g.tensor] for g in groups}


def onnx_layer_errors(model: Any, proto: Any, groups: Sequence[LayerGroup], read: dict[str, OnnxTensor],
                      x: np.ndarray, progress: Callable[[str], None] = lambda _m: None) -> list[LayerError]:
    """Per-group errors of the quantized ``proto`` on images ``x`` (NHWC, as the dataset holds them)."""
    from edgekit.runtimes.ort import session

    chunks = iter_keras_refs(model, groups, x, progress)
    progress(f"onnxruntime: {len(groups)} intermediate tensors on {len(x)} images")
    names = [read[g.tensor].name for g in groups]
    sess = session(with_outputs(proto, names), threads=1)
    stats = [_Stats() for _ in groups]
    for xb, refs in chunks:  # one chunk of images and its layer outputs at a time
        got = _run(sess, names, xb)
        for g, s, ref, out in zip(groups, stats, refs, got):
            out = out.transpose(0, 2, 3, 1) if read[g.tensor].nchw else out
            for i in range(len(xb)):
                s.add(ref[i], out[i].reshape(ref[i].shape))
    facts = [(read[g.tensor].dtype, read[g.tensor].scale) for g in groups]
    return error_rows(model, groups, stats, facts, 120.0)  # the float input is quantized inside the graph
