"""edgekit inspect: real parameter counts, MACs, op lists and target checks for a tiny model of
each format (Keras 3, tf_keras, SavedModel, ONNX), and one line + exit 2 for a bad file."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edgekit import vocab
from edgekit.cli.main import cli
from edgekit.errors import InputError
from edgekit.models.inspect import inspect_model
from tests.models.onnx_builders import tiny_cnn
from tests.models.savedmodel_builders import save_module, tiny_module


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    import onnx

    path = tmp_path_factory.mktemp("inspect") / "tiny.onnx"
    onnx.save(tiny_cnn(), str(path))
    return path


def test_onnx_facts_and_targets(onnx_path):
    r = inspect_model(onnx_path)
    assert (r["format"], r["framework"], r["layout"]) == (vocab.FORMAT_ONNX, "onnxruntime", vocab.NCHW)
    assert r["inputs"] == [{"name": "x", "shape": [1, 8, 8], "dtype": "float32"}]
    assert r["outputs"][0]["shape"] == [4]
    # initializers: w1 6*1*3*3 + b1 6 + w2 6*6*3*3 + b2 6 + BN 4*6 + wf 4*6 + bf 4
    assert r["params"] == 54 + 6 + 324 + 6 + 24 + 24 + 4
    # conv1 8x8x6 outputs * 1*3*3 + conv2 (after 2x2 pool) 4x4x6 * 6*3*3 + gemm 6*4
    assert r["macs"] == 8 * 8 * 6 * 9 + 4 * 4 * 6 * 54 + 24
    assert r["ops"] == {"Conv": 2, "Relu": 2, "MaxPool": 1, "BatchNormalization": 1, "GlobalAveragePool": 1,
                        "Flatten": 1, "Gemm": 1, "Softmax": 1}
    t = r["targets"]
    assert "random" in r["calibration"] and "random" in t[vocab.TFLITE_INT8]["detail"]
    assert t[vocab.TFLITE]["ok"] and t[vocab.TFLITE_INT8]["ok"] and t[vocab.ONNX]["ok"]
    assert t[vocab.TFLITE_INT4]["ok"] and t[vocab.TFLITE_INT4]["detail"].startswith("int4 weights in 3 kernels"), t[vocab.TFLITE_INT4]
    assert t[vocab.EDGETPU]["ok"] and t[vocab.EDGETPU]["ops_mapped"] == t[vocab.EDGETPU]["ops_total"] > 0
    assert t[vocab.EDGETPU]["detail"].startswith(f"{t[vocab.EDGETPU]['ops_mapped']}/{t[vocab.EDGETPU]['ops_total']} ")
    assert 1000 < t[vocab.MICRO]["arena_bytes"] < 64_000
    assert not t["compress"]["ok"] and "Keras" in t["compress"]["detail"]


def test_onnx_macs_unknown_for_symbolic_image_size(tmp_path):
    import onnx

    from edgekit.models.inspect import onnx_facts

    proto = tiny_cnn()
    for d in proto.graph.input[0].type.tensor_type.shape.dim[2:]:
        d.dim_param = "side"
    assert onnx_facts(proto)["macs"] == "unknown"
    assert onnx_facts(tiny_cnn())["macs"] == 8664
    onnx.checker.check_model(proto)


def test_savedmodel_facts(tmp_path):
    path = save_module(tmp_path / "sm", tiny_module())
    r = inspect_model(path)
    assert (r["format"], r["framework"], r["signature"]) == (vocab.FORMAT_SAVEDMODEL, "tensorflow", "serving_default")
    assert r["inputs"] == [{"name": "x", "shape": [8, 8, 1], "dtype": "float32"}]
    assert r["params"] == 3 * 3 * 1 * 4 + 4 * 3
    assert r["macs"] == 8 * 8 * 4 * 9 + 4 * 3  # SAME 3x3 conv, 4 filters; (1, 4) @ (4, 3)
    assert {"Conv2D", "MatMul", "Softmax", "Relu", "Mean"} <= set(r["ops"])
    t = r["targets"]
    assert t[vocab.TFLITE]["ok"] and t[vocab.EDGETPU]["ok"] and t[vocab.MICRO]["ok"] and t[vocab.ONNX]["ok"]
    assert not t["compress"]["ok"]
    two = save_module(tmp_path / "two", tiny_module(), "two")
    r = inspect_model(two, signature="logits", targets=False)
    assert r["signature"] == "logits" and r["outputs"][0]["name"] == "out" and r["macs"] == 8 * 8 * 4 * 9 + 4 * 3


def test_keras3_facts_translation_and_refusal(keras3_files):
    folder, _ = keras3_files
    r = inspect_model(folder / "cnn.keras")
    assert (r["format"], r["framework"]) == (vocab.FORMAT_KERAS3, "keras")
    assert r["params"] == (3 * 3 * 8 + 8) + 4 * 8 + (8 * 10 + 10)  # conv, BN (4 vectors), dense
    assert r["macs"] == 26 * 26 * 8 * 9 + 8 * 10
    assert r["ops"]["Conv2D"] == 1 and r["ops"]["BatchNormalization"] == 1 and r["ops"]["Dense"] == 1
    t = r["targets"]
    assert t["compress"]["ok"] and "translation proven" in t["compress"]["detail"]
    assert t[vocab.EDGETPU]["ok"] and t[vocab.MICRO]["ok"] and t[vocab.ONNX]["ok"], t
    assert t[vocab.TFLITE_INT4]["ok"] and t[vocab.TFLITE_INT4]["detail"].startswith("int4 weights in 2 kernels"), t

    ln = inspect_model(folder / "layernorm.keras")["targets"]
    assert not ln["compress"]["ok"] and "LayerNormalization" in ln["compress"]["detail"]
    assert ln[vocab.TFLITE]["ok"]  # converts from the Keras 3 graph even without a translation
    assert not ln[vocab.EDGETPU]["ok"] and ln[vocab.EDGETPU]["ops_mapped"] < ln[vocab.EDGETPU]["ops_total"]


def test_tf_keras_model(tmp_path):
    import tf_keras

    from edgekit.models.io import save_model

    m = tf_keras.Sequential([tf_keras.Input((6, 6, 1)), tf_keras.layers.Conv2D(2, 3), tf_keras.layers.Flatten(),
                             tf_keras.layers.Dense(3)])
    save_model(m, tmp_path / "m.keras")
    r = inspect_model(tmp_path / "m.keras", targets=False)
    assert r["format"] == vocab.FORMAT_TF_KERAS and "targets" not in r
    assert r["params"] == (9 * 2 + 2) + (32 * 3 + 3)
    assert r["macs"] == 4 * 4 * 2 * 9 + 32 * 3
    assert r["ops"] == {"Conv2D": 1, "Flatten": 1, "Dense": 1}


def test_dataset_calibration_is_named_and_checked(keras3_files, onnx_path):
    from edgekit.data import load_dataset

    folder, _ = keras3_files
    data = load_dataset("digits", limit=100)  # 28x28x1 images: what cnn.keras takes
    r = inspect_model(folder / "cnn.keras", dataset=data)
    assert "digits" in r["calibration"] and "random" not in r["targets"][vocab.TFLITE_INT8]["detail"]
    with pytest.raises(InputError, match="does not fit"):  # an 8x8 model
        inspect_model(onnx_path, dataset=data)


def test_cli_json_text_and_bad_files(onnx_path, tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["inspect", str(onnx_path), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["macs"] == 8664
    res = runner.invoke(cli, ["inspect", str(onnx_path)])
    assert res.exit_code == 0 and "MACs/image: 8,664" in res.output and "edgetpu:" in res.output
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(onnx_path.read_bytes()[:200])
    unknown = tmp_path / "notes.txt"
    unknown.write_text("hello")
    res = runner.invoke(cli, ["inspect", str(onnx_path), "--signature", "serving_default"])
    assert res.exit_code == 2 and "SavedModel signature" in res.output
    for path in (bad, unknown, tmp_path / "missing.keras"):
        res = runner.invoke(cli, ["inspect", str(path)])
        assert res.exit_code == 2, res.output
        assert len(res.output.strip().splitlines()) == 1 and res.output.startswith("Error: ")
