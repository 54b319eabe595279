"""--int16: tflite-int8 with 16-bit activations for exactly the named Keras layers (ai-edge-quantizer)."""
from __future__ import annotations

import sys

import pytest

from edgekit.errors import UsageError


def _op_dtypes(data: bytes) -> dict[str, str]:
    """Op output tensor name -> dtype for every op but the (re)quantize ones, read through LiteRT."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=data)
    it.allocate_tensors()
    tensors = {d["index"]: d for d in it.get_tensor_details()}
    return {tensors[op["outputs"][0]]["name"]: tensors[op["outputs"][0]]["dtype"].__name__
            for op in it._get_ops_details() if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE", "DELEGATE")}


@pytest.fixture(scope="module")
def int16_export(planted_int8, digits, tmp_path_factory):
    """tflite-int8 of the planted model with conv_c and logits at 16-bit activations, validated."""
    from edgekit.export import ExportConfig
    from edgekit.validate import ValidateConfig
    from edgekit.validate.step import export_and_validate

    # 'bad' stays int8, which ruins it on purpose: no agreement floor
    return export_and_validate(planted_int8[0], digits, "tflite-int8", tmp_path_factory.mktemp("int16") / "x",
                               force=True, export_config=ExportConfig(representative_samples=100,
                                                                      int16=("conv_c", "logits")),
                               validate_config=ValidateConfig(probe=False, min_agreement=0))


def test_int16_layers_have_int16_activations_and_the_rest_int8(int16_export):
    dtypes = _op_dtypes(int16_export.path("tflite-int8").read_bytes())
    wide = sorted(n for n, d in dtypes.items() if d == "int16")
    # conv_c's conv; logits' fully-connected and its softmax (the model output)
    assert len(wide) == 3 and "/conv_c/" in wide[1] and "/logits/" in wide[2] and wide[0] == "StatefulPartitionedCall:0"
    narrow = [n for n, d in dtypes.items() if d == "int8"]
    assert len(narrow) == 3 and all(("/conv_c/" not in n and "/logits/" not in n) for n in narrow)
    assert set(dtypes.values()) == {"int8", "int16"}
    info = int16_export.outputs["tflite-int8"].info
    assert info["input"][0]["dtype"] == "int8" and "int16" in info["activation_dtypes"]
    assert info["ops"].get("QUANTIZE", 0) >= 2  # the int8 -> int16 boundary before conv_c, int16 -> int8 after


def test_int16_export_runs_and_validates(int16_export, planted_diagnosis):
    row = int16_export.validation.rows()[0]
    assert row["status"] == "ok", row
    acc = int16_export.validation.targets["tflite-int8"]["accuracy"]
    # 'bad' stays int8 (its weights are what int8 ruins): same accuracy as the plain int8 re-export, within noise
    assert abs(acc - planted_diagnosis.reexport_accuracy) < 0.05


def test_int16_keeps_the_float_model_where_int8_is_fine(trained_small, digits, tmp_path):
    from edgekit.export import ExportConfig
    from edgekit.validate.step import export_and_validate

    model, path = trained_small
    first = model.layers[0].name
    res = export_and_validate(path, digits, "tflite-int8", tmp_path / "s", force=True,
                              export_config=ExportConfig(representative_samples=100, int16=(first,)))
    t = res.validation.targets["tflite-int8"]
    assert t["agreement_pct"] > 95 and res.validation.rows()[0]["status"] == "ok"
    assert sum(d == "int16" for d in _op_dtypes(res.path("tflite-int8").read_bytes()).values()) == 1


def test_int16_runs_on_tflite_micro_like_litert(int16_export, digits):
    """TFLite Micro has the 16x8 kernels: same top-1 as LiteRT, outputs a few int16 steps apart."""
    import numpy as np

    from edgekit.formats.tflite_flatbuffer import read_tflite
    from edgekit.runtimes.base import dequantize, quantize
    from edgekit.runtimes.litert import LiteRTRunner
    from edgekit.runtimes.tflite_micro import micro_interpreter

    data = int16_export.path("tflite-int8").read_bytes()
    g = read_tflite(data)
    i, o = g.input_tensors[0], g.output_tensors[0]
    assert o.dtype == "int16"  # logits (and its softmax) are int16 here: the model output is too
    x = digits.x_test[:20]
    it = micro_interpreter(data, 256 * 1024)
    outs = []
    for k in range(len(x)):
        it.set_input(quantize(x[k : k + 1], i.scale[0], i.zero_point[0], np.int8), 0)
        it.invoke()
        outs.append(dequantize(it.get_output(0), o.scale[0], o.zero_point[0])[0])
    ref = LiteRTRunner(data).predict(x)
    assert (np.stack(outs).argmax(1) == ref.argmax(1)).all() and np.abs(np.stack(outs) - ref).max() < 0.02


def test_unknown_int16_layer_has_did_you_mean(planted_int8, tmp_path):
    from click.testing import CliRunner

    from edgekit.cli.main import cli

    r = CliRunner().invoke(cli, ["export", str(planted_int8[0]), "--target", "tflite-int8", "--dataset", "digits",
                                 "--out", str(tmp_path / "o"), "--int16", "conv_cc", "--no-validate"])
    assert r.exit_code == 2, r.output
    assert "--int16: the model has no layer 'conv_cc'" in r.output and 'Did you mean "conv_c"' in r.output


@pytest.mark.parametrize("targets", [["tflite-dynamic"], ["onnx-int8", "edgetpu"]])
def test_int16_needs_the_tflite_int8_target(planted_int8, tmp_path, targets):
    from click.testing import CliRunner

    from edgekit.cli.main import cli

    args = [a for t in targets for a in ("--target", t)]
    r = CliRunner().invoke(cli, ["export", str(planted_int8[0]), *args, "--dataset", "digits",
                                 "--out", str(tmp_path / "o"), "--int16", "bad"])
    assert r.exit_code == 2, r.output
    assert "applies to the tflite-int8 target only" in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_int16_and_keep_float_together_is_refused(planted_model, digits):
    from edgekit.export import ExportConfig
    from edgekit.export.convert import to_tflite

    with pytest.raises(UsageError, match="int16 or keep_float, not both"):
        ExportConfig(int16=("bad",), keep_float=("conv_c",))
    with pytest.raises(UsageError, match="full-int8 TFLite only"):
        to_tflite(planted_model, "fp16", int16=("bad",))


def test_missing_quantizer_is_one_line_with_the_install_hint(planted_int8, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from edgekit.cli.main import cli

    monkeypatch.setitem(sys.modules, "ai_edge_quantizer", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "ai_edge_quantizer.quantizer", None)
    r = CliRunner().invoke(cli, ["export", str(planted_int8[0]), "--target", "tflite-int8", "--dataset", "digits",
                                 "--out", str(tmp_path / "o"), "--int16", "bad"])
    assert r.exit_code == 2, r.output
    assert "pip install 'edgekit[quantizer]'" in r.output and len(r.output.strip().splitlines()) == 1


def test_int16_config_and_recipe_key():
    from edgekit.export import ExportConfig
    from edgekit.recipe.schema import Recipe

    assert "int16" not in ExportConfig().to_dict()  # unchanged config hash for existing runs
    c = ExportConfig.from_dict({"int16": ["bad"]})
    assert c.int16 == ("bad",) and ExportConfig.from_dict(c.to_dict()) == c
    r = Recipe.from_dict({"data": {"spec": "digits"}, "model": {"name": "cnn"},
                          "export": {"targets": ["tflite-int8"], "int16": ["conv1"]}})
    assert r.export.options.int16 == ("conv1",) and r.to_dict()["export"]["int16"] == ["conv1"]
