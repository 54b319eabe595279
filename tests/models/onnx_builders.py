"""Tiny ONNX models built with onnx.helper for the ONNX format tests (no downloads)."""
from __future__ import annotations

import numpy as np


def tiny_cnn(channels: int = 1, size: int = 8, classes: int = 4, layout: str = "NCHW", softmax: bool = True,
             seed: int = 0, batch: object = "N"):
    """Conv(3x3, pad 1)+Relu+MaxPool+Conv+BatchNormalization+Relu+GlobalAveragePool+Flatten+Gemm(+Softmax),
    the shape torch.onnx.export gives a small CNN. ``layout="NHWC"`` puts a Transpose in front."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    f = 6
    inits = {
        "w1": rng.normal(0, 0.5, (f, channels, 3, 3)).astype(np.float32),
        "b1": rng.normal(0, 0.1, (f,)).astype(np.float32),
        "w2": rng.normal(0, 0.3, (f, f, 3, 3)).astype(np.float32),
        "b2": rng.normal(0, 0.1, (f,)).astype(np.float32),
        "bn_s": rng.uniform(0.5, 1.5, (f,)).astype(np.float32),
        "bn_b": rng.normal(0, 0.1, (f,)).astype(np.float32),
        "bn_m": rng.normal(0, 0.1, (f,)).astype(np.float32),
        "bn_v": rng.uniform(0.5, 1.5, (f,)).astype(np.float32),
        "wf": rng.normal(0, 0.5, (classes, f)).astype(np.float32),
        "bf": rng.normal(0, 0.1, (classes,)).astype(np.float32),
    }
    first = "x"
    nodes = []
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]))
        first = "xt"
    nodes += [
        helper.make_node("Conv", [first, "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c2", "bn_s", "bn_b", "bn_m", "bn_v"], ["n2"], epsilon=1e-5),
        helper.make_node("Relu", ["n2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["fl"], axis=1),
        helper.make_node("Gemm", ["fl", "wf", "bf"], ["logits" if softmax else "y"], transB=1),
    ]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["y"], axis=1))
    shape = [batch, channels, size, size] if layout == "NCHW" else [batch, size, size, channels]
    graph = helper.make_graph(
        nodes, "tiny_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, classes])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgekit-tests")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def op_mix(seed: int = 1, batch: object = "N"):
    """An NCHW (N, 3, 10, 10) graph of the other ops the converter knows: Pad, MaxPool with explicit
    pads, AveragePool (SAME-like and padded), depthwise Conv, Clip (relu6 and one-sided), Add of a
    (C, 1, 1) constant, Mul, Concat on channels, Sigmoid, LeakyRelu, Squeeze, Reshape, MatMul+Add."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    c, f = 3, 4
    inits = {
        "pads": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64), "w1": rng.normal(0, 0.5, (f, c, 3, 3)).astype(np.float32),
        "dw": rng.normal(0, 0.5, (2 * f, 1, 3, 3)).astype(np.float32), "lo": np.array(0, np.float32),
        "hi": np.array(6, np.float32), "cb": rng.normal(0, 0.5, (2 * f, 1, 1)).astype(np.float32),
        "sc": np.array([1.5], np.float32), "axes": np.array([2, 3], np.int64),
        "shape": np.array([1, -1], np.int64) if batch == 1 else np.array([0, -1], np.int64),
        "wm": rng.normal(0, 0.5, (4 * f, 5)).astype(np.float32), "bm": rng.normal(0, 0.1, (5,)).astype(np.float32),
        "neg": np.array(-0.5, np.float32),
    }
    n = helper.make_node
    nodes = [
        n("Pad", ["x", "pads"], ["p"], mode="constant"),
        n("Conv", ["p", "w1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 0, 1]),
        n("MaxPool", ["c1"], ["m1"], kernel_shape=[3, 3], strides=[1, 1], pads=[0, 1, 1, 0]),
        n("Conv", ["m1", "dw"], ["d1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=f),
        n("Clip", ["d1", "lo", "hi"], ["r6"]),
        n("Add", ["r6", "cb"], ["a1"]),
        n("Mul", ["a1", "sc"], ["s1"]),
        n("AveragePool", ["s1"], ["av"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("AveragePool", ["s1"], ["av2"], kernel_shape=[2, 2], pads=[0, 0, 1, 1], count_include_pad=1),
        n("Sigmoid", ["av2"], ["sg"]),
        n("Concat", ["av", "sg"], ["cat"], axis=1),
        n("LeakyRelu", ["cat"], ["lr"], alpha=0.1),
        n("Clip", ["lr", "neg"], ["cl"]),
        n("GlobalMaxPool", ["cl"], ["g"]),
        n("Squeeze", ["g", "axes"], ["sq"]),
        n("Reshape", ["sq", "shape"], ["rs"]),
        n("MatMul", ["rs", "wm"], ["mm"]),
        n("Add", ["mm", "bm"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "op_mix", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, c, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 5])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgekit-tests")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def nchw_twin(proto):
    """The NCHW model torch.onnx.export would hand over for a tf2onnx (NHWC) export: tf2onnx's first
    node turns the NHWC input into NCHW (a Transpose, or a Reshape for one channel); drop it and
    declare the input (N, C, H, W)."""
    import onnx

    g = onnx.ModelProto()
    g.CopyFrom(proto)
    inp = g.graph.input[0]
    first = [n for n in g.graph.node if inp.name in n.input]
    assert len(first) == 1 and first[0].op_type in ("Transpose", "Reshape"), first
    g.graph.node.remove(first[0])
    for node in g.graph.node:
        for i, name in enumerate(node.input):
            if name == first[0].output[0]:
                node.input[i] = inp.name
    dims = inp.type.tensor_type.shape.dim
    h, w, c = (d.dim_value for d in dims[1:])
    for d, v in zip(dims[1:], (c, h, w)):
        d.dim_value = v
    onnx.checker.check_model(g, full_check=True)
    return g
