"""edgekit diagnose --fix on the command line: it re-exports with the repair and re-validates."""
from __future__ import annotations

import json
import re
import sys


def _run(args):
    from click.testing import CliRunner

    from edgekit.cli.main import cli

    return CliRunner().invoke(cli, ["diagnose", *args])


def test_fix_reexports_and_revalidates(planted_int8, tmp_path):
    model, art = planted_int8
    out = tmp_path / "d"
    r = _run([str(model), str(art), "--dataset", "digits", "--samples", "150", "--representative-samples", "100",
              "--fix", "--max-accuracy-drop", "3", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    fix = json.loads((out / "diagnose.json").read_text())["fix"]
    assert fix["repair"] == "keep_float" and fix["keep_float"] == ["bad"]
    assert fix["before_accuracy"] < 0.3 < 0.7 < fix["after_accuracy"]  # ~10% -> ~80% on the 150 images
    before, after = (float(v) / 100 for v in re.search(r"(\d+\.\d+)% -> (\d+\.\d+)%", r.output).groups())
    assert (before, after) == (round(fix["before_accuracy"], 4), round(fix["after_accuracy"], 4))
    line = next(s for s in r.output.splitlines() if s.startswith("re-exported with bad in float"))
    validated = json.loads((out / "fixed" / "validation.json").read_text())["targets"]["tflite-int8"]
    assert validated["accuracy"] > 0.7 and f"accuracy {validated['accuracy']:.4f}" in line
    assert (out / "fixed" / "model_int8.tflite").stat().st_size > 1000


def test_int16_repair_without_the_quantizer_is_one_line(planted_int8, monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_quantizer", None)
    monkeypatch.setitem(sys.modules, "ai_edge_quantizer.quantizer", None)
    model, art = planted_int8
    r = _run([str(model), str(art), "--dataset", "digits", "--fix", "--repair", "int16", "--quiet"])
    assert r.exit_code == 2 and "pip install 'edgekit[quantizer]'" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_int16_repair_does_not_mend_ruined_weights(planted_model, planted_diagnosis, digits):
    """The planted layer is ruined by its int8 *weights*; 16-bit activations keep them 8-bit."""
    from edgekit.diagnose import propose_fix

    fix = propose_fix(planted_model, planted_diagnosis, digits, max_drop_pt=2.0, representative_samples=100,
                      repair="int16")
    assert fix["repair"] == "int16" and fix["int16"][0] == "bad" and fix["keep_float"] == []
    assert not fix["within"] and fix["after_accuracy"] < 0.3


def test_fix_repairs_an_activation_outlier_with_the_pair_around_it(planted_model, digits, tmp_path):
    """relu_a's output has a huge constant channel: its int8 scale ruins the tensor relu_a -> bad,
    which no single layer in float mends; --fix then tries a layer with the layers feeding it."""
    from edgekit._lazy import tf
    from edgekit.diagnose import diagnose, propose_fix
    from tests.diagnose import planted

    model = tf().keras.models.clone_model(planted_model)
    model.set_weights(planted_model.get_weights())
    planted.plant_activations(model)
    assert planted.x_float_equal(model, planted_model, digits.x_test[:50])
    from edgekit.export.convert import to_tflite

    art = tmp_path / "act.tflite"
    art.write_bytes(to_tflite(model, "int8", digits.representative(100)))
    res = diagnose(model, art, digits, samples=150, leave_one_out=False,
                   representative_samples=100)
    assert res.layers[0].name == "bad" and res.drop_pt > 20
    fix = propose_fix(model, res, digits, max_drop_pt=3.0, representative_samples=100)
    assert fix["keep_float"] == ["relu_a", "bad"] and fix["within"]
    assert fix["after_accuracy"] > fix["before_accuracy"] + 0.3



def test_fix_without_leave_one_out_follows_the_noise_ranking_to_an_agreement_floor(planted_int8, tmp_path):
    """No leave-one-out: the repair is the shortest prefix of the noise ranking (here the planted layer
    alone) that reaches both the drop and the agreement asked; the re-validated artifact meets them."""
    model, art = planted_int8
    out = tmp_path / "d"
    r = _run([str(model), str(art), "--dataset", "digits", "--samples", "150", "--representative-samples", "100",
              "--no-leave-one-out", "--fix", "--max-accuracy-drop", "5", "--min-agreement", "85", "--out", str(out),
              "--quiet"])
    assert r.exit_code == 0, r.output
    d = json.loads((out / "diagnose.json").read_text())
    fix = d["fix"]
    assert d["layers"][0]["name"] == "bad" and fix["keep_float"] == ["bad"] and fix["within"]
    assert all(layer["recovered_pt"] is None for layer in d["layers"])  # nothing was left out one at a time
    assert fix["before_agreement_pct"] < 50 and fix["after_agreement_pct"] >= 85
    assert re.search(r"\(agreement \d+\.\d+%\) -> \d+\.\d+% \(agreement \d+\.\d+%\)", r.output)
    validated = json.loads((out / "fixed" / "validation.json").read_text())["targets"]["tflite-int8"]
    assert validated["agreement_pct"] >= 85


def test_min_agreement_out_of_range_is_a_usage_error(planted_int8):
    model, art = planted_int8
    r = _run([str(model), str(art), "--dataset", "digits", "--fix", "--min-agreement", "120"])
    assert r.exit_code == 2 and "--min-agreement" in r.output and "Traceback" not in r.output
