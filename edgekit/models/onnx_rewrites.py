"""Rewrites of an ONNX graph before onnx2tf converts it: each computes the same values, in a form the
edge runtimes run (the Edge TPU compiler and TFLite Micro know fewer ops than LiteRT) or that
quantizes well. Each takes a ModelProto and returns it, or a rewritten copy."""
from __future__ import annotations

from typing import Any

import numpy as np


def dims(value_info: Any) -> tuple[int | None, ...]:
    """A value's dimensions, None where symbolic."""
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim)


def for_edge(proto: Any) -> Any:
    """Every rewrite below that needs no inferred shapes: batch 1, HardSigmoid, padded MaxPool."""
    return zero_padded_max_pool(relu6_hard_sigmoid(batch_one(proto)))


def relu6_hard_sigmoid(proto: Any) -> Any:
    """``proto`` with each HardSigmoid(x) = clip(a*x + b, 0, 1) written as clip(6a*x + 6b, 0, 6) / 6.

    The same function; TensorFlow Lite's converter turns the first into RELU_0_TO_1, an op that
    neither the Edge TPU compiler nor TFLite Micro knows, and the second into RELU6, which both run
    (torchvision's MobileNetV3 squeeze-excite gates are HardSigmoid)."""
    from onnx import helper, numpy_helper

    nodes = list(proto.graph.node)
    if not any(n.op_type == "HardSigmoid" for n in nodes):
        return proto
    out = type(proto)()
    out.CopyFrom(proto)
    del out.graph.node[:]
    consts = []
    for i, n in enumerate(nodes):
        if n.op_type != "HardSigmoid":
            out.graph.node.append(n)
            continue
        a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
        alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
        k = f"edgekit_hsig{i}"
        for name, v in ((f"{k}_a", 6 * alpha), (f"{k}_b", 6 * beta), (f"{k}_lo", 0.0), (f"{k}_hi", 6.0),
                        (f"{k}_s", 1 / 6)):
            consts.append(numpy_helper.from_array(np.array(v, np.float32), name))
        out.graph.node.extend([
            helper.make_node("Mul", [n.input[0], f"{k}_a"], [f"{k}_ax"], name=f"{n.name or k}_mul"),
            helper.make_node("Add", [f"{k}_ax", f"{k}_b"], [f"{k}_axb"], name=f"{n.name or k}_add"),
            helper.make_node("Clip", [f"{k}_axb", f"{k}_lo", f"{k}_hi"], [f"{k}_r6"], name=f"{n.name or k}_relu6"),
            helper.make_node("Mul", [f"{k}_r6", f"{k}_s"], [n.output[0]], name=f"{n.name or k}_scale")])
    out.graph.initializer.extend(consts)
    return out


NON_NEGATIVE = ("Relu", "Sigmoid", "HardSigmoid", "Softplus")


def zero_padded_max_pool(proto: Any) -> Any:
    """``proto`` with each padded MaxPool whose input is never negative (it follows a Relu) split
    into Pad(0) + MaxPool without pads: the same result.

    onnx2tf pads a MaxPool with -inf; calibrated to int8 that constant gets a scale of ~1e36, the
    tensor's real values round to one level (the int8 model is garbage and XNNPACK refuses it).
    Zero padding quantizes like any activation (torchvision's ResNet stem: conv, bn, relu, maxpool)."""
    from onnx import helper, numpy_helper

    nodes = list(proto.graph.node)
    producer = {o: n for n in nodes for o in n.output}

    def pads_of(n: Any) -> list[int]:
        return [int(v) for a in n.attribute if a.name == "pads" for v in a.ints]

    def non_negative(name: str) -> bool:
        p = producer.get(name)
        if p is None:
            return False
        if p.op_type in NON_NEGATIVE:
            return True
        return p.op_type == "Clip" and len(p.input) > 1 and _const_value(proto, p.input[1], -1.0) >= 0

    todo = [n for n in nodes if n.op_type == "MaxPool" and any(pads_of(n)) and non_negative(n.input[0])
            and all(a.name != "auto_pad" or helper.get_attribute_value(a) in (b"NOTSET", "NOTSET")
                    for a in n.attribute)]
    if not todo:
        return proto
    out = type(proto)()
    out.CopyFrom(proto)
    del out.graph.node[:]
    for i, n in enumerate(nodes):
        if n not in todo:
            out.graph.node.append(n)
            continue
        pads = pads_of(n)
        k = f"edgekit_mpad{i}"
        half = len(pads) // 2
        out.graph.initializer.append(numpy_helper.from_array(
            np.array([0, 0, *pads[:half], 0, 0, *pads[half:]], np.int64), f"{k}_pads"))
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute if a.name != "pads"}
        out.graph.node.extend([
            helper.make_node("Pad", [n.input[0], f"{k}_pads"], [f"{k}_x"], name=f"{n.name or k}_pad", mode="constant"),
            helper.make_node("MaxPool", [f"{k}_x"], list(n.output), name=n.name or k, **attrs)])
    return out


def gather_as_reshape(proto: Any) -> Any:
    """``proto`` with each Gather that only re-lays out a 1-D tensor (constant indices 0, 1, ..., N-1
    over all N elements, on axis 0) written as a Reshape to the indices' shape: the same values.

    torch's dynamo exporter writes ``AdaptiveAvgPool2d(1)`` + ``Flatten`` as ReduceMean, Reshape(-1),
    Gather(arange), Reshape (its ``as_strided``); a GATHER op runs on neither the Edge TPU nor TFLite
    Micro. Needs the graph's inferred shapes (``value_info``)."""
    from onnx import helper, numpy_helper

    init = {t.name: t for t in proto.graph.initializer}
    shapes = {v.name: dims(v) for v in list(proto.graph.value_info) + list(proto.graph.input)}
    todo: dict[int, tuple[int, ...]] = {}  # node index -> the indices' shape
    for i, n in enumerate(proto.graph.node):
        if n.op_type != "Gather" or n.input[1] not in init:
            continue
        axis = next((helper.get_attribute_value(a) for a in n.attribute if a.name == "axis"), 0)
        idx = numpy_helper.to_array(init[n.input[1]])
        data = shapes.get(n.input[0])
        if axis == 0 and data is not None and len(data) == 1 and data[0] == idx.size \
                and np.array_equal(idx.reshape(-1), np.arange(idx.size)):
            todo[i] = idx.shape
    if not todo:
        return proto
    out = type(proto)()
    out.CopyFrom(proto)
    del out.graph.node[:]
    for i, n in enumerate(proto.graph.node):
        if i not in todo:
            out.graph.node.append(n)
            continue
        shape_name = f"edgekit_gather{i}_shape"
        out.graph.initializer.append(numpy_helper.from_array(np.array(todo[i], np.int64), shape_name))
        out.graph.node.append(helper.make_node("Reshape", [n.input[0], shape_name], list(n.output),
                                               name=n.name or f"edgekit_gather{i}"))
    return out


def batch_one(proto: Any) -> Any:
    """``proto`` with a symbolic batch axis of its image input fixed to 1 (what the TFLite targets run),
    so that shape inference gives every tensor concrete dimensions."""
    init = {t.name for t in proto.graph.initializer}
    inp = [v for v in proto.graph.input if v.name not in init][0]
    dims = inp.type.tensor_type.shape.dim
    if dims and not dims[0].HasField("dim_value"):
        out = type(proto)()
        out.CopyFrom(proto)
        first = [v for v in out.graph.input if v.name == inp.name][0].type.tensor_type.shape.dim[0]
        first.Clear()
        first.dim_value = 1
        return out
    return proto


def _const_value(proto: Any, name: str, default: float) -> float:
    """The scalar initializer or Constant called ``name``, else ``default``."""
    from onnx import numpy_helper

    for t in proto.graph.initializer:
        if t.name == name:
            return float(numpy_helper.to_array(t).reshape(-1)[0])
    for n in proto.graph.node:
        if n.op_type == "Constant" and n.output[0] == name:
            for a in n.attribute:
                if a.name == "value":
                    return float(numpy_helper.to_array(a.t).reshape(-1)[0])
    return default
