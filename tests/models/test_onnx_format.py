"""The ONNX model format: detection, vetting (custom ops, external data, corrupt files), layout,
onnxruntime reference, the ONNX -> TensorFlow NHWC converter and onnx-int8 from an ONNX file."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit import vocab
from edgekit.errors import InputError
from edgekit.models.loading import load
from edgekit.models.layout import guess_layout
from tests.models.onnx_builders import nchw_twin, op_mix, tiny_cnn


def _save(proto, path):
    import onnx

    onnx.save(proto, str(path))
    return path


def _ort(proto, x_model_layout):
    import onnxruntime as ort

    s = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x_model_layout})[0]


def _images(shape, n=6, seed=3):
    return np.random.default_rng(seed).uniform(0, 1, (n, *shape)).astype(np.float32)


@pytest.mark.parametrize("shape,layout", [
    ((None, 1, 28, 28), vocab.NCHW), ((None, 3, 32, 32), vocab.NCHW), ((1, 3, None, None), vocab.NCHW),
    ((None, 28, 28, 1), vocab.NHWC), ((None, 32, 32, 3), vocab.NHWC), ((None, 3, 3, 3), vocab.NHWC),
    ((None, 8, 28, 28), vocab.NHWC), ((None, 784), vocab.NHWC)])
def test_layout_guess(shape, layout):
    assert guess_layout(shape) == layout


def test_nchw_model_loads_and_predicts_on_nhwc_images(tmp_path):
    proto = tiny_cnn(channels=1, size=8)
    h = load(_save(proto, tmp_path / "m.onnx"))
    assert (h.format, h.framework, h.layout) == (vocab.FORMAT_ONNX, "onnxruntime", vocab.NCHW)
    assert h.input_shape == (8, 8, 1) and h.inputs[0].shape == (1, 8, 8) and h.num_outputs == 4
    assert h.info["outputs_are_probabilities"] is True and h.info["opset"] == 17
    x = _images((8, 8, 1))
    np.testing.assert_allclose(h.predict(x), _ort(proto, x.transpose(0, 3, 1, 2)), atol=1e-6)


def test_nhwc_model_and_logits(tmp_path):
    nhwc = load(_save(tiny_cnn(channels=3, size=8, layout="NHWC"), tmp_path / "a.onnx"))
    assert nhwc.layout == vocab.NHWC and nhwc.input_shape == (8, 8, 3)
    logits = load(_save(tiny_cnn(channels=3, size=8, softmax=False), tmp_path / "b.onnx"))
    assert logits.layout == vocab.NCHW and logits.info["outputs_are_probabilities"] is False


def test_detects_onnx_by_content_without_suffix(tmp_path):
    h = load(_save(tiny_cnn(), tmp_path / "model.bin"))
    assert h.format == vocab.FORMAT_ONNX


def test_truncated_file_is_one_line_input_error(tmp_path):
    data = tiny_cnn().SerializeToString()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="is not a valid ONNX model") as e:
        load(p)
    assert "\n" not in str(e.value)


def test_custom_domain_op_is_refused_naming_it(tmp_path):
    from onnx import helper

    proto = tiny_cnn()
    relu = next(n for n in proto.graph.node if n.op_type == "Relu")
    relu.op_type, relu.domain = "FancyRelu", "com.example.ops"
    proto.opset_import.append(helper.make_opsetid("com.example.ops", 1))
    with pytest.raises(InputError, match="'FancyRelu' of the custom domain 'com.example.ops'"):
        load(_save(proto, tmp_path / "custom.onnx"))


def test_onnxruntime_contrib_domain_is_allowed_and_listed():
    from edgekit.models.onnx_format import check_domains

    proto = tiny_cnn()
    relu = next(n for n in proto.graph.node if n.op_type == "Relu")
    relu.op_type, relu.domain = "Gelu", "com.microsoft"
    assert check_domains(proto, "m") == ["Gelu"]


def test_external_data_inside_the_folder_loads(tmp_path):
    import onnx

    p = tmp_path / "ext.onnx"
    onnx.save_model(tiny_cnn(), str(p), save_as_external_data=True, location="weights.bin", size_threshold=0)
    h = load(p)
    assert h.info["external_data"] == ["weights.bin"]
    x = _images((8, 8, 1))
    np.testing.assert_allclose(h.predict(x), _ort(tiny_cnn(), x.transpose(0, 3, 1, 2)), atol=1e-6)


def test_external_data_outside_the_folder_is_refused(tmp_path):
    from onnx import TensorProto

    (tmp_path / "secret.bin").write_bytes(b"\0" * 1024)
    proto = tiny_cnn()
    t = next(t for t in proto.graph.initializer if t.name == "w1")
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="../secret.bin")
    (tmp_path / "m").mkdir()
    p = tmp_path / "m" / "evil.onnx"
    p.write_bytes(proto.SerializeToString())
    with pytest.raises(InputError, match="outside the model's folder"):
        load(p)


def test_multi_input_model_is_refused(tmp_path):
    from onnx import TensorProto, helper

    proto = tiny_cnn()
    proto.graph.input.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, ["N", 4]))
    with pytest.raises(InputError, match="2 graph inputs"):
        load(_save(proto, tmp_path / "two.onnx"))


@pytest.mark.parametrize("build", [
    lambda: tiny_cnn(channels=1, size=8), lambda: tiny_cnn(channels=3, size=12, softmax=False),
    lambda: tiny_cnn(layout="NHWC"), lambda: op_mix(), lambda: op_mix(batch=1)],
    ids=["nchw", "nchw-rgb-logits", "nhwc", "op-mix", "op-mix-fixed-batch"])
def test_converted_tf_matches_onnxruntime(tmp_path, build):
    """onnx2tf's TF graph (NHWC input at batch 1) gives onnxruntime's outputs on the original file
    within 1e-4, five images run one at a time; the proof is recorded."""
    proto = build()
    h = load(_save(proto, tmp_path / "m.onnx"))
    x = (_images(h.input_shape, n=5) - 0.5) * 4
    g = h.tf_graph()
    assert tuple(g.function.input_signature[0].shape) == (1, *h.input_shape) and g.batch == 1
    out = g(x).numpy()
    assert out.shape == (5, h.num_outputs)
    np.testing.assert_allclose(out, h.predict(x), atol=1e-4)
    assert h.tf_graph() is g  # built once
    conv = h.info["conversion"]
    assert conv["converter"].startswith("onnx2tf ") and conv["max_abs_diff"] < 1e-4


def test_converted_graph_converts_to_tflite(tmp_path):
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    h = load(_save(op_mix(), tmp_path / "m.onnx"))
    g = h.tf_graph()
    data = tf.lite.TFLiteConverter.from_concrete_functions([g.concrete(batch_size=1)], g.trackable).convert()
    it = Interpreter(model_content=data)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    assert list(i["shape"]) == [1, 10, 10, 3]
    x = _images((10, 10, 3), n=1)
    it.set_tensor(i["index"], x)
    it.invoke()
    np.testing.assert_allclose(it.get_tensor(o["index"]), h.predict(x), atol=1e-4)


def test_unknown_op_names_node_and_what_to_do():
    from onnx import helper

    from edgekit.models.onnx_to_tf import ConversionError, onnx_to_tf

    proto = tiny_cnn()
    relu = next(n for n in proto.graph.node if n.op_type == "Relu")
    relu.op_type, relu.name = "BitwiseNot", "act1"  # a standard op onnx2tf does not implement
    proto.opset_import[0].CopyFrom(helper.make_opsetid("", 18))
    with pytest.raises(ConversionError) as e:
        onnx_to_tf(proto)
    msg = str(e.value)
    assert "node 'act1' (BitwiseNot)" in msg and "opset_version" in msg and "\n" not in msg


def test_fixed_batch_above_one_is_refused_with_the_exporter_setting():
    from edgekit.models.onnx_to_tf import ConversionError, onnx_to_tf

    with pytest.raises(ConversionError, match=r"fixed batch of 7 .*dynamic_axes"):
        onnx_to_tf(tiny_cnn(batch=7))


def test_fixed_batch_model_predicts_a_short_last_chunk(tmp_path):
    """A model exported with a fixed batch of 7 runs 10 images (7 + 3 padded) through onnxruntime."""
    proto = tiny_cnn(batch=7)
    h = load(_save(proto, tmp_path / "b7.onnx"))
    x = _images((8, 8, 1), n=10)
    ref = np.concatenate([_ort(tiny_cnn(batch=1), x[i : i + 1].transpose(0, 3, 1, 2)) for i in range(10)])
    np.testing.assert_allclose(h.predict(x), ref, atol=1e-6)


def test_conversion_is_offline_and_writes_no_files(tmp_path, monkeypatch):
    """onnx2tf downloads sample images for a small fixed-batch RGB model; edgekit's conversion does not
    reach the network and leaves nothing in the working folder."""
    import socket

    from edgekit.models.onnx_to_tf import onnx_to_tf

    def no_network(*a, **k):
        raise AssertionError("network access during conversion")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.chdir(tmp_path)
    import sys

    limit = sys.getrecursionlimit()
    g = onnx_to_tf(tiny_cnn(channels=3, size=8, batch=1, layout="NHWC"))
    assert g.input_shape == (8, 8, 3)
    assert list(tmp_path.iterdir()) == []
    assert sys.getrecursionlimit() == limit  # onnx2tf's import sets 2**31 - 1: a deep recursion would crash


def test_quantize_int8_needs_an_onnx_handle(trained_cnn):
    from edgekit.models.onnx_format import quantize_int8

    with pytest.raises(InputError, match="needs the handle of an ONNX file"):
        quantize_int8(load(trained_cnn[0]), np.zeros((1, 28, 28, 1), np.float32))


@pytest.mark.slow
def test_real_images_tflite_and_onnx_int8_agree(trained_cnn, digits, tmp_path):
    """A trained CNN handed over as NCHW ONNX (what torch.onnx.export gives): on real digits,
    TFLite float within 1e-4 of onnxruntime, TFLite full-int8 and onnx-int8 >= 99% top-1 agreement."""
    import onnxruntime as ort
    import tensorflow as tf

    from edgekit.export.onnx import keras_to_onnx
    from edgekit.models.onnx_format import quantize_int8

    model, _ = trained_cnn
    h = load(_save(nchw_twin(keras_to_onnx(model, (28, 28, 1))), tmp_path / "nchw.onnx"))
    assert h.layout == vocab.NCHW
    x, rep = digits.x_test, digits.representative(200)
    ref = h.predict(x)
    g = h.tf_graph()

    def litert(data):  # the graph is built at batch 1: one image a time, int8 through its scale/zero point
        from edgekit.runtimes import LiteRTRunner

        return LiteRTRunner(data).predict(x)

    def converter():
        return tf.lite.TFLiteConverter.from_concrete_functions([g.concrete()], g.trackable)

    np.testing.assert_allclose(litert(converter().convert()), ref, atol=1e-4)
    c = converter()
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.representative_dataset = lambda: ([rep[k : k + 1]] for k in range(len(rep)))
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    c.inference_input_type = c.inference_output_type = tf.int8
    assert np.mean(litert(c.convert()).argmax(1) == ref.argmax(1)) >= 0.99
    s = ort.InferenceSession(quantize_int8(h, rep), providers=["CPUExecutionProvider"])
    q = s.run(None, {h.inputs[0].name: np.asarray(x).transpose(0, 3, 1, 2)})[0]
    assert np.mean(q.argmax(1) == ref.argmax(1)) >= 0.99


def test_model_local_functions_are_not_custom_ops(tmp_path):
    """A node calling a function the model defines itself (torch exports modules as functions) loads,
    and the converter inlines it."""
    from onnx import helper

    proto = tiny_cnn()
    relu = next(n for n in proto.graph.node if n.op_type == "Relu")
    relu.op_type, relu.domain = "MyAct", "local.fn"
    proto.opset_import.append(helper.make_opsetid("local.fn", 1))
    proto.functions.append(helper.make_function(
        "local.fn", "MyAct", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])],
        [helper.make_opsetid("", 17)]))
    h = load(_save(proto, tmp_path / "fn.onnx"))
    x = _images((8, 8, 1))
    np.testing.assert_allclose(h.predict(x), _ort(tiny_cnn(), x.transpose(0, 3, 1, 2)), atol=1e-6)
    np.testing.assert_allclose(h.tf_graph()(x).numpy(), h.predict(x), atol=1e-4)
