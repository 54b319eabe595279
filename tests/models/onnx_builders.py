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
