"""--keep-float: the exported tflite-int8 really has float ops for exactly those layers and validates."""
from __future__ import annotations

import pytest

from edgekit.errors import UsageError


def _float_ops(data: bytes) -> dict[str, str]:
    """Activation-producing op -> dtype of its output tensor, for ops with a Keras-named output."""
    from edgekit.formats.tflite_flatbuffer import read_tflite

    g = read_tflite(data)
    out = {}
    for op in g.ops:
        t = g.tensor(op.outputs[0])
        if op.op not in ("QUANTIZE", "DEQUANTIZE"):
            out[t.name] = t.dtype
    return out


def test_keep_float_exports_exactly_those_layers_and_validates(planted_model, planted_int8, digits, tmp_path):
    from edgekit.export import ExportConfig
    from edgekit.validate.step import export_and_validate

    res = export_and_validate(planted_int8[0], digits, "tflite-int8", tmp_path / "x", force=True,
                              export_config=ExportConfig(representative_samples=200, keep_float=("bad",)))
    data = res.path("tflite-int8").read_bytes()
    dtypes = _float_ops(data)
    floats = sorted(n for n, d in dtypes.items() if d == "float32")
    assert len(floats) == 1 and "/bad/" in floats[0]  # exactly the 'bad' conv stays float
    assert sum(d == "int8" for d in dtypes.values()) >= 4  # everything else is int8
    ops = res.outputs["tflite-int8"].info["ops"]
    assert ops.get("DEQUANTIZE") == 1 and ops.get("QUANTIZE", 0) >= 1
    row = res.validation.rows()[0]
    assert row["status"] == "ok", row
    assert res.validation.targets["tflite-int8"]["accuracy"] > 0.5  # the plain int8 export is at ~10%


def test_keep_float_is_only_for_full_int8(planted_model):
    from edgekit.export.convert import to_tflite

    with pytest.raises(UsageError, match="full-int8"):
        to_tflite(planted_model, "dynamic", keep_float=("bad",))


def test_export_cli_unknown_layer(planted_int8, tmp_path):
    from click.testing import CliRunner

    from edgekit.cli.main import cli

    r = CliRunner().invoke(cli, ["export", str(planted_int8[0]), "--target", "tflite-int8", "--dataset", "digits",
                                 "--out", str(tmp_path / "o"), "--keep-float", "conv_c,bda", "--no-validate"])
    assert r.exit_code == 2, r.output
    assert "no layer 'bda'" in r.output and 'Did you mean "bad"' in r.output


def test_keep_float_config_and_recipe_key():
    from edgekit.export import ExportConfig
    from edgekit.recipe.schema import Recipe

    assert "keep_float" not in ExportConfig().to_dict()  # unchanged config hash for existing runs
    c = ExportConfig.from_dict({"keep_float": ["bad", "conv_c"]})
    assert c.keep_float == ("bad", "conv_c") and ExportConfig.from_dict(c.to_dict()) == c
    r = Recipe.from_dict({"data": {"spec": "digits"}, "model": {"name": "cnn"},
                          "export": {"targets": ["tflite-int8"], "keep_float": ["conv1"]}})
    assert r.export.options.keep_float == ("conv1",)
    assert r.to_dict()["export"]["keep_float"] == ["conv1"]


def test_onnx_int8_keep_float_leaves_that_layer_unquantized(planted_int8, digits, tmp_path):
    import onnx

    from edgekit.export import ExportConfig
    from edgekit.validate.step import export_and_validate

    res = export_and_validate(planted_int8[0], digits, "onnx-int8", tmp_path / "o", force=True,
                              export_config=ExportConfig(representative_samples=200, keep_float=("bad", "bn_a")))
    g = onnx.load(res.path("onnx-int8")).graph
    fed_by = {o: n for n in g.node for o in n.output}
    convs = {n.name.split("/")[1]: n for n in g.node if n.op_type == "Conv"}
    dq_inputs = {name: [fed_by.get(i) is not None and fed_by[i].op_type == "DequantizeLinear" for i in n.input[:2]]
                 for name, n in convs.items()}
    assert dq_inputs["bad"][1] is False  # float weights (its input is the dequantized int8 of relu_a)
    assert dq_inputs["conv_a"][1] is False  # bn_a is folded into conv_a's node: that node stays float
    assert dq_inputs["conv_c"] == [True, True]  # the others stay quantized
    # onnxruntime also breaks conv_a (its all-zero fused channel), so both are needed here
    assert res.validation.targets["onnx-int8"]["accuracy"] > 0.5
