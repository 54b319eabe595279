"""edgekit inspect on exported artifacts: the per-op table of a .tflite edgekit wrote (dtypes, the
input scale LiteRT reports, MACs by hand, peak op, Edge TPU mapping), the node table of an .onnx,
--json, and one line + exit 2 for a damaged file."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgekit.cli.main import cli
from edgekit.errors import InputError
from edgekit.models import inspect_artifact


@pytest.fixture(scope="module")
def int8_files(trained_small, digits, tmp_path_factory):
    """(tflite-int8, onnx-int8) files exported from the trained cnn-small."""
    from edgekit.export import ExportConfig, export

    out = tmp_path_factory.mktemp("inspect_artifacts")
    res = export(trained_small[1], digits, ["tflite-int8", "onnx-int8"], out,
                 config=ExportConfig(representative_samples=32))
    return out / res.outputs["tflite-int8"].primary, out / res.outputs["onnx-int8"].primary


def test_tflite_int8_lists_every_op_with_its_dtype_and_litert_scale(int8_files):
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.formats.tflite_flatbuffer import read_tflite

    path = int8_files[0]
    r = inspect_artifact(path)
    g = read_tflite(path)
    assert [o["op"] for o in r["ops"]] == [op.op for op in g.ops] and "CONV_2D" in r["op_counts"]
    for o in r["ops"]:  # full int8: every activation int8, constants int8 or int32 (biases, shapes)
        assert all(t["dtype"] == "int8" for t in o["inputs"] + o["outputs"]), o
        assert all(t["dtype"] in ("int8", "int32") for t in o["constants"]), o
        assert o["edgetpu"]["mapped"] is False and o["edgetpu"]["reason"]  # batch left free: see below
        assert o["activation_bytes"] == sum(int(np.prod(t["shape"])) for t in o["inputs"] + o["outputs"])
    it = Interpreter(model_path=str(path))
    (scale, zp), (oscale, ozp) = it.get_input_details()[0]["quantization"], it.get_output_details()[0]["quantization"]
    assert r["inputs"][0]["quantization"] == {"scale": [pytest.approx(scale, rel=1e-7)], "zero_point": [zp]}
    assert r["outputs"][0]["quantization"]["scale"][0] == pytest.approx(oscale, rel=1e-7)
    assert r["outputs"][0]["quantization"]["zero_point"] == [ozp]
    assert r["inputs"][0]["shape"] == [1, 28, 28, 1] and r["inputs"][0]["dtype"] == "int8"
    peak = max(r["ops"], key=lambda o: o["activation_bytes"])
    assert (r["peak"]["index"], r["peak"]["activation_bytes"]) == (peak["index"], peak["activation_bytes"])
    # tflite-int8 keeps the batch free; the Edge TPU needs static shapes (its own target fixes batch 1)
    assert not r["edgetpu"]["fully_mapped"] and r["edgetpu"]["partition"]["index"] == 0
    assert "dynamic shape" in r["ops"][0]["edgetpu"]["reason"]
    assert r["macs"] == sum(o["macs"] for o in r["ops"]) > 0


def test_macs_of_known_conv_depthwise_and_dense_match_a_hand_count(tmp_path):
    import tensorflow as tf
    from tf_keras import Sequential, layers

    model = Sequential([layers.Input((6, 6, 2)), layers.Conv2D(4, 3), layers.DepthwiseConv2D(3),
                        layers.Flatten(), layers.Dense(3)])
    data = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    path = tmp_path / "known.tflite"
    path.write_bytes(data)
    r = inspect_artifact(path)
    macs = {o["op"]: o["macs"] for o in r["ops"] if o["macs"]}
    # conv: 4x4 outputs x 4 filters, each 3x3x2; depthwise: 2x2x4 outputs, each 3x3; dense: 3 units x 16 inputs
    assert macs == {"CONV_2D": 4 * 4 * 4 * 3 * 3 * 2, "DEPTHWISE_CONV_2D": 2 * 2 * 4 * 3 * 3, "FULLY_CONNECTED": 3 * 16}
    conv = next(o for o in r["ops"] if o["op"] == "CONV_2D")  # float32: input 6x6x2 + output 4x4x4
    assert conv["activation_bytes"] == (6 * 6 * 2 + 4 * 4 * 4) * 4 and conv["inputs"][0]["quantization"] is None
    assert not r["edgetpu"]["fully_mapped"]  # float tensors: not for the Edge TPU


def test_cli_json_and_text(int8_files):
    res = CliRunner().invoke(cli, ["inspect", str(int8_files[0]), "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.output)
    assert r["format"] == "tflite" and r["ops"] and r["peak"]["how"].startswith("estimate")
    res = CliRunner().invoke(cli, ["inspect", str(int8_files[0])])
    assert res.exit_code == 0 and "CONV_2D" in res.output and "peak activation memory: op #" in res.output
    assert "Edge TPU:" in res.output and "scale" in res.output


def test_onnx_int8_lists_node_types_and_qdq_scales(int8_files):
    path = int8_files[1]
    r = inspect_artifact(path)
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= set(r["op_counts"]) and "shapes_note" not in r
    assert r["quantized_nodes"] >= 3 and r["opset"]["ai.onnx"] > 0
    conv = next(n for n in r["ops"] if n["op"] == "Conv")
    assert conv["quantized"] and conv["inputs"][0]["quantization"]["scale"][0] > 0
    assert conv["inputs"][1]["quantization"]["channels"] == conv["outputs"][0]["shape"][1]  # per-channel weights
    assert all(d is not None for d in conv["outputs"][0]["shape"][1:])  # shape inference filled it in
    q = next(n for n in r["ops"] if n["op"] == "QuantizeLinear")
    assert q["outputs"][0]["dtype"] in ("int8", "uint8")
    res = CliRunner().invoke(cli, ["inspect", str(path), "--ops"])
    assert res.exit_code == 0, res.output
    assert "Conv" in res.output and "DequantizeLinear" in res.output and "quantized" in res.output.splitlines()[0]
    assert json.loads(CliRunner().invoke(cli, ["inspect", str(path), "--ops", "--json"]).output)["format"] == "onnx"


@pytest.mark.parametrize("how", ["garbage", "truncated", "empty"])
def test_damaged_tflite_is_one_line_and_exit_2(int8_files, tmp_path, how):
    data = {"garbage": b"\x00\x01garbage" * 50, "truncated": int8_files[0].read_bytes()[:300], "empty": b""}[how]
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(data)
    res = CliRunner().invoke(cli, ["inspect", str(bad)])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and "TFLite flatbuffer" in lines[0], res.output
    with pytest.raises(InputError):
        inspect_artifact(bad)


def test_garbage_onnx_with_ops_and_flags_that_do_not_apply(tmp_path, int8_files):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07\xff\xff garbage")
    res = CliRunner().invoke(cli, ["inspect", str(bad), "--ops"])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    res = CliRunner().invoke(cli, ["inspect", str(int8_files[0]), "--dataset", "digits"])
    assert res.exit_code == 2 and "--dataset" in res.output
