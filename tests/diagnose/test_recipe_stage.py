"""The recipe's diagnose section: a stage of edgekit run, shown by the report, read by the gates."""
from __future__ import annotations

import json

import pytest

from edgekit.errors import UsageError


def _recipe(tmp_path, model, gates: str) -> str:
    p = tmp_path / "recipe.yaml"
    p.write_text(f"""
name: planted
data: {{spec: digits}}
model: {{path: {model}}}
export: {{targets: [tflite-int8], representative_samples: 100}}
validate: {{runs: 5, min_agreement: 0}}  # the planted layer ruins int8 on purpose
diagnose: {{samples: 100, leave_one_out: false}}
gates: {{targets: [tflite-int8], {gates}}}
""")
    return str(p)


def _run(recipe, *args):
    from click.testing import CliRunner

    from edgekit.cli.main import cli

    return CliRunner().invoke(cli, ["run", recipe, *args])


def test_diagnose_stage_runs_reports_and_gates(planted_int8, tmp_path):
    recipe = _recipe(tmp_path, planted_int8[0], "min_layer_snr_db: 10, min_accuracy: 0.05")
    out = tmp_path / "run"
    r = _run(recipe, "--out", str(out), "--quiet")
    assert r.exit_code == 1, r.output  # the planted layer's SNR fails its gate
    d = json.loads((out / "diagnose" / "diagnose.json").read_text())
    assert d["target"] == "tflite-int8" and d["layers"][0]["name"] == "bad" and d["samples"] == 100
    man = json.loads((out / "manifest.json").read_text())
    checks = {c["name"]: c for c in man["stages"]["gates"]["metrics"]["checks"]}
    assert checks["layer_snr"]["passed"] is False and checks["layer_snr"]["measured"] < 10
    lowest = min(d["layers"], key=lambda l: l["snr_db"])  # errors add up: a layer after 'bad' is lowest
    assert checks["layer_snr"]["measured"] == lowest["snr_db"] and lowest["name"] in checks["layer_snr"]["detail"]
    assert {"diagnose/diagnose.json", "diagnose/diagnose.png"} <= {a["path"] for a in man["artifacts"]}
    report = (out / "report.md").read_text()
    assert "## Diagnose" in report and report.index("| bad") < report.index("| conv_c")
    r = _run(recipe, "--out", str(out), "--set", "gates.min_layer_snr_db=null")
    assert r.exit_code == 0, r.output
    assert "diagnose  reused" in r.output


def test_diagnose_section_checks():
    from edgekit.recipe.schema import Recipe

    base = {"data": {"spec": "digits"}, "model": {"path": "m.keras"}}
    r = Recipe.from_dict({**base, "export": {"targets": ["onnx-int8"]}, "diagnose": {"samples": 50}})
    assert r.diagnose.target_of(r.export.targets) == "onnx-int8" and r.to_dict()["diagnose"]["samples"] == 50
    assert "diagnose" not in Recipe.from_dict({**base, "export": {"targets": ["tflite"]}}).to_dict()
    with pytest.raises(UsageError, match="diagnose reads an exported tflite-int8 or onnx-int8 artifact"):
        Recipe.from_dict({**base, "export": {"targets": ["tflite"]}, "diagnose": {}})
    with pytest.raises(UsageError, match=r"diagnose: Unknown diagnose target 'tflite'"):
        Recipe.from_dict({**base, "export": {"targets": ["tflite"]}, "diagnose": {"target": "tflite"}})
    with pytest.raises(UsageError, match="diagnose.repair|Unknown repair 'int8'"):
        Recipe.from_dict({**base, "export": {"targets": ["tflite-int8"]}, "diagnose": {"repair": "int8"}})
    with pytest.raises(UsageError, match="is a tflite-int8 repair"):
        Recipe.from_dict({**base, "export": {"targets": ["onnx-int8"]},
                          "diagnose": {"target": "onnx-int8", "repair": "int16"}})


def _manifest(diagnose=None):
    from edgekit.manifest import FORMAT

    stages = {"validate": {"metrics": {"targets": {"tflite-int8": {}, "tflite": {}}}}}
    if diagnose is not None:
        stages["diagnose"] = {"metrics": diagnose}
    return {"format": FORMAT, "stages": stages}


def test_recovered_gate_reads_the_diagnose_fix():
    from edgekit.gate import run_gates

    fix = {"keep_float": ["bad"], "before_accuracy": 0.1, "after_accuracy": 0.8}
    man = _manifest({"target": "tflite-int8", "layers": [{"name": "bad", "snr_db": 3.0}], "fix": fix})
    report = run_gates(man, {"min_recovered_pt": 50, "min_layer_snr_db": 2})
    assert [(c.name, c.target, c.passed) for c in report.checks] == [("layer_snr", "tflite-int8", True),
                                                                      ("recovered", "tflite-int8", True)]
    assert report.checks[1].measured == pytest.approx(70.0)
    report = run_gates(man, {"min_recovered_pt": 75})
    assert not report.passed and "10.00 % -> 80.00 %" in report.checks[0].detail
    no_fix = _manifest({"target": "tflite-int8", "layers": []})
    check = run_gates(no_fix, {"min_recovered_pt": 1}).checks[0]
    assert check.measured is None and not check.passed and "without fix" in check.detail


def test_diagnose_gate_without_a_diagnose_stage():
    from edgekit.gate import run_gates

    with pytest.raises(UsageError, match="read the diagnose stage"):
        run_gates(_manifest(), {"min_layer_snr_db": 10})
