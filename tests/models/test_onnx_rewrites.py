"""The ONNX rewrites made before onnx2tf compute the same values as the graph they replace (onnxruntime on
both), and leave alone what they must not touch."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.models import onnx_rewrites as rw


def _model(nodes, inits, in_shape, out_name, out_shape, opset=18):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 9
    onnx.checker.check_model(m)
    return m


def _run(proto, x):
    import onnxruntime as ort

    s = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})[0]


def _ops(proto):
    return [n.op_type for n in proto.graph.node]


def test_hard_sigmoid_becomes_relu6_form_with_the_same_values():
    from onnx import helper

    m = _model([helper.make_node("HardSigmoid", ["x"], ["y"], alpha=1 / 6, beta=0.5)], {}, [1, 4, 3, 3], "y",
               [1, 4, 3, 3])
    x = np.linspace(-8, 8, 36, dtype=np.float32).reshape(1, 4, 3, 3)
    out = rw.relu6_hard_sigmoid(m)
    assert "HardSigmoid" not in _ops(out) and "Clip" in _ops(out)
    np.testing.assert_allclose(_run(out, x), _run(m, x), atol=1e-6)


@pytest.mark.parametrize("act,rewritten", [("Relu", True), ("Tanh", False)])
def test_padded_max_pool_after_relu_gets_zero_padding(act, rewritten):
    """After a ReLU (values >= 0) zero padding is exact; after Tanh it is not, so that graph is kept."""
    from onnx import helper

    nodes = [helper.make_node(act, ["x"], ["a"]),
             helper.make_node("MaxPool", ["a"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])]
    m = _model(nodes, {}, [1, 2, 8, 8], "y", [1, 2, 4, 4])
    out = rw.zero_padded_max_pool(m)
    assert ("Pad" in _ops(out)) is rewritten
    x = np.random.default_rng(0).normal(size=(1, 2, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(_run(out, x), _run(m, x), atol=1e-6)


def test_as_strided_gather_becomes_a_reshape():
    """torch's AdaptiveAvgPool2d(1) + Flatten: ReduceMean, Reshape(-1), Gather(arange), Reshape; a Gather of
    other indices (a real permutation) stays."""
    import onnx
    from onnx import helper

    def build(idx):
        nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=1),
                 helper.make_node("Reshape", ["m", "flat"], ["f"]),
                 helper.make_node("Gather", ["f", "idx"], ["g"], axis=0),
                 helper.make_node("Reshape", ["g", "shape"], ["y"])]
        inits = {"axes": np.array([2, 3], np.int64), "flat": np.array([-1], np.int64), "idx": idx,
                 "shape": np.array([1, 6], np.int64)}
        return onnx.shape_inference.infer_shapes(_model(nodes, inits, [1, 6, 4, 4], "y", [1, 6]), data_prop=True)

    x = np.random.default_rng(1).normal(size=(1, 6, 4, 4)).astype(np.float32)
    m = build(np.arange(6, dtype=np.int64).reshape(1, 6, 1, 1))
    out = rw.gather_as_reshape(m)
    assert "Gather" not in _ops(out)
    np.testing.assert_allclose(_run(out, x), _run(m, x), atol=1e-6)
    perm = build(np.array([1, 0, 2, 3, 4, 5], np.int64))
    assert "Gather" in _ops(rw.gather_as_reshape(perm))


def test_batch_one_fixes_a_symbolic_batch_only():
    from tests.models.onnx_builders import tiny_cnn

    fixed = rw.batch_one(tiny_cnn())
    assert rw.dims(fixed.graph.input[0])[0] == 1
    b1 = tiny_cnn(batch=1)
    assert rw.batch_one(b1) is b1
