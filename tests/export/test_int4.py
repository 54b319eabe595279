"""tflite-int4: int4 weights (Conv2D/Dense, per channel) with int8 activations, validated on LiteRT."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from edgekit.errors import UsageError


@pytest.fixture(scope="module")
def int4_export(trained_small, digits, tmp_path_factory):
    """tflite-int8 and tflite-int4 of cnn-small from one export call, validated on LiteRT."""
    from edgekit.export import ExportConfig
    from edgekit.validate import ValidateConfig, export_and_validate

    return export_and_validate(trained_small[1], digits, ["tflite-int8", "tflite-int4"],
                               tmp_path_factory.mktemp("int4") / "x", force=True,
                               export_config=ExportConfig(representative_samples=100),
                               validate_config=ValidateConfig(runs=5, probe=False))


def test_int4_kernels_are_int4_and_the_rest_int8(int4_export):
    from edgekit.formats.tflite_flatbuffer import read_tflite

    data = int4_export.path("tflite-int4").read_bytes()
    g = read_tflite(data)
    kernels = [g.tensor(op.inputs[1]) for op in g.ops if op.op in ("CONV_2D", "FULLY_CONNECTED")]
    assert len(kernels) == 3 and {t.dtype for t in kernels} == {"int4"}  # conv1, conv2, output
    # packed two values a byte (LiteRT's Python API shows int4 tensors as int8, so the bytes are the check)
    assert [t.const_bytes for t in kernels] == [(int(np.prod(t.shape)) + 1) // 2 for t in kernels]
    assert [len(t.scale) for t in kernels] == [t.shape[0] for t in kernels]  # one scale per output channel
    assert all(set(t.zero_point) == {0} for t in kernels)  # symmetric
    assert g.input_tensors[0].dtype == "int8" and g.output_tensors[0].dtype == "int8"
    assert g.dtypes(constant=False) == {"int8"}  # activations stay int8
    info = int4_export.outputs["tflite-int4"].info
    assert info["weight_dtypes"] == ["int32", "int4"]  # int32: the biases


def test_int4_is_smaller_than_int8(int4_export):
    int8 = int4_export.path("tflite-int8").stat().st_size
    int4 = int4_export.path("tflite-int4").stat().st_size
    assert int4 < 0.75 * int8, (int4, int8)  # the kernels are most of the file and take half the bytes


def test_int4_runs_on_litert_and_validates(int4_export):
    rows = {r["target"]: r for r in int4_export.validation.rows()}
    assert rows["tflite-int4"]["status"] == "ok", rows["tflite-int4"]
    t4 = int4_export.validation.targets["tflite-int4"]
    t8 = int4_export.validation.targets["tflite-int8"]
    assert t4["runtime"] == "litert"
    assert t4["agreement_pct"] > 85  # 4-bit weights without fine-tuning: a little below int8
    assert t4["accuracy"] > t8["accuracy"] - 0.1


def test_int4_artifact_is_recognized_as_tflite_int4(int4_export):
    from edgekit.validate.validator import infer_target

    assert infer_target(int4_export.path("tflite-int4")) == "tflite-int4"
    assert infer_target(int4_export.path("tflite-int8")) == "tflite-int8"


def test_int4_without_ai_edge_quantizer_says_how_to_install(trained_small, digits, tmp_path, monkeypatch):
    from edgekit.export import ExportConfig, export

    monkeypatch.setitem(sys.modules, "ai_edge_quantizer", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "ai_edge_quantizer.quantizer", None)
    with pytest.raises(UsageError) as e:
        export(trained_small[1], digits, "tflite-int4", tmp_path / "x", config=ExportConfig(representative_samples=10))
    msg = str(e.value)
    assert "tflite-int4" in msg and "pip install 'edgekit[quantizer]'" in msg and "\n" not in msg
    assert not (tmp_path / "x" / "model_int4.tflite").exists()


def test_int4_refuses_a_model_without_conv_or_dense_kernels():
    from edgekit._lazy import tf
    from edgekit.export.convert import to_tflite
    from edgekit.export.int4 import int4_tflite

    keras = tf().keras
    model = keras.Sequential([keras.layers.Input((8, 8, 1)), keras.layers.DepthwiseConv2D(3, name="dw"),
                              keras.layers.GlobalAveragePooling2D()])
    rep = np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32)
    with pytest.raises(UsageError, match="no Conv2D or Dense kernel") as e:
        int4_tflite(to_tflite(model, "float32"), rep)
    assert "Received: ops DEPTHWISE_CONV_2D, MEAN." in str(e.value) and "\n" not in str(e.value)


def test_int4_refuses_a_qat_model(trained_small, digits, tmp_path):
    """A QAT model's float flatbuffer holds int8 weights behind DEQUANTIZE: nothing for int4 to store."""
    import tensorflow_model_optimization as tfmot

    from edgekit._lazy import keras
    from edgekit.export import ExportConfig, export
    from edgekit.models import save_model

    clone = keras().models.clone_model(trained_small[0])
    clone.set_weights(trained_small[0].get_weights())
    path = save_model(tfmot.quantization.keras.quantize_model(clone), tmp_path / "qat.keras")
    with pytest.raises(UsageError) as e:
        export(path, digits, "tflite-int4", tmp_path / "x", config=ExportConfig(representative_samples=10))
    assert "QAT" in str(e.value) and "tflite-int8" in str(e.value) and "\n" not in str(e.value)


def test_a_flatbuffer_without_signature_gets_one_to_calibrate_through():
    """A concrete function converted without a trackable (the ONNX path) has no signature;
    ai-edge-quantizer calibrates by signature, so int4 adds serving_default over the same tensors."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.formats.tflite_flatbuffer import with_signature
    from edgekit.export.int4 import int4_tflite, int4_weights

    w = tf.constant(np.linspace(-1, 1, 4 * 3, dtype=np.float32).reshape(4, 3))
    fn = tf.function(lambda x: tf.nn.relu(tf.matmul(x, w))).get_concrete_function(tf.TensorSpec((1, 4), tf.float32))
    bare = tf.lite.TFLiteConverter.from_concrete_functions([fn]).convert()
    assert Interpreter(model_content=bare).get_signature_list() == {}
    signed = with_signature(bare)
    it = Interpreter(model_content=signed)
    assert list(it.get_signature_list()) == ["serving_default"]
    x = np.array([[0.5, -1.0, 2.0, 0.25]], np.float32)
    out = it.get_signature_runner("serving_default")(**{next(iter(it.get_signature_runner().get_input_details())): x})
    np.testing.assert_allclose(next(iter(out.values())), np.maximum(x @ w.numpy(), 0), rtol=1e-6)
    assert with_signature(signed) == signed  # already signed: unchanged
    data = int4_tflite(bare, np.random.default_rng(0).uniform(-2, 2, (16, 4)).astype(np.float32))
    assert len(int4_weights(data)) == 1
