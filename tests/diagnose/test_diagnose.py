"""diagnose ranks the planted bad layer first, and keeping it float recovers the drop."""
from __future__ import annotations

import json

import pytest

from edgekit.errors import UsageError


def test_planted_layer_ranks_first(planted_diagnosis):
    r = planted_diagnosis
    assert r.drop_pt > 20  # int8 ruins the planted layer
    assert r.layers[0].name == "bad"
    assert r.layers[0].nsr_added > 0.5 > max(l.nsr_added for l in r.layers[1:])
    first = next(l for l in r.layers if l.name == "conv_a+bn_a+relu_a")
    assert first.snr_db > 25 and first.cosine > 0.99 and first.scale > 0
    assert r.layers[0].cosine < 0.5


def test_keeping_the_planted_layer_float_recovers_most_of_the_drop(planted_diagnosis):
    r = planted_diagnosis
    best = max(r.layers, key=lambda l: l.recovered_pt)
    assert best.name == "bad"
    drop = 100 * (r.float_accuracy - r.reexport_accuracy)
    assert best.recovered_pt >= drop / 2
    assert all(l.recovered_pt < best.recovered_pt / 4 for l in r.layers if l.name != "bad")


def test_fix_keeps_just_the_planted_layer(planted_model, planted_diagnosis, digits):
    from edgekit.diagnose import propose_fix

    fix = propose_fix(planted_model, planted_diagnosis, digits, max_drop_pt=2.0, representative_samples=200)
    assert fix["keep_float"] == ["bad"]
    assert fix["within"] and fix["after_accuracy"] > fix["before_accuracy"] + 0.2


def test_outputs_and_report_block(planted_diagnosis, tmp_path):
    from edgekit.diagnose import output
    from edgekit.report import build_report
    from edgekit.report.render import to_markdown

    output.write(planted_diagnosis, tmp_path)
    d = json.loads((tmp_path / "diagnose.json").read_text())
    assert d["layers"][0]["name"] == "bad"
    assert (tmp_path / "diagnose.png").read_bytes()[:4] == b"\x89PNG"
    assert "| bad | int8 |" in (tmp_path / "diagnose.md").read_text()
    md = to_markdown(build_report(tmp_path))
    assert "Diagnose" in md and "conv_a+bn_a+relu_a" in md
    assert md.index("| bad") < md.index("| conv_c")


def test_float_artifact_has_nothing_to_diagnose(planted_model, digits, tmp_path):
    from edgekit.diagnose import diagnose
    from edgekit.export.convert import to_tflite

    p = tmp_path / "f.tflite"
    p.write_bytes(to_tflite(planted_model, "float32"))
    with pytest.raises(UsageError, match="only float activations: nothing to diagnose") as e:
        diagnose(planted_model, p, digits)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("shape", [(28, 28, 1), (14, 14, 1)])
def test_artifact_of_another_model(planted_model, digits, tmp_path, shape):
    from edgekit._lazy import tf
    from edgekit.diagnose import diagnose
    from edgekit.export.convert import to_tflite

    L = tf().keras.layers
    other = tf().keras.Sequential([tf().keras.Input(shape), L.Flatten(name="f"), L.Dense(10, name="d")])
    p = tmp_path / "other.tflite"
    p.write_bytes(to_tflite(other, "int8", digits.representative(20)[:, : shape[0], : shape[1]]))
    with pytest.raises(UsageError, match="is not an export of this model: its input is") as e:
        diagnose(planted_model, p, digits, leave_one_out=False)
    assert "\n" not in str(e.value)


def test_other_suffix_and_corrupt_onnx_are_one_line(planted_model, digits, tmp_path):
    from edgekit.diagnose import diagnose
    from edgekit.errors import InputError

    p = tmp_path / "m.pb"
    p.write_bytes(b"x")
    with pytest.raises(UsageError, match=r"takes a quantized .tflite \(tflite-int8\) or .onnx"):
        diagnose(planted_model, p, digits)
    p = tmp_path / "m.onnx"
    p.write_bytes(b"x")
    with pytest.raises(InputError, match="is not a valid ONNX model") as e:
        diagnose(planted_model, p, digits)
    assert "\n" not in str(e.value)
