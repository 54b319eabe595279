"""`edgekit gate` and `edgekit report` from the command line: exit codes, tables, JUnit, config files."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from edgekit.cli.main import cli
from tests.gate.fabricate import make_run


@pytest.fixture()
def run(tmp_path):
    return make_run(tmp_path / "run")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize("cmd", ["gate", "report"])
def test_help(cmd):
    r = invoke(cmd, "--help")
    assert r.exit_code == 0, r.output
    assert f" {cmd} [OPTIONS]" in r.output
    if cmd == "gate":
        for opt in ("--max-size", "--max-gzip-size", "--max-latency-ms", "--max-accuracy-drop", "--min-accuracy",
                    "--min-agreement", "--baseline", "--max-size-growth", "--max-accuracy-fall",
                    "--max-latency-ratio", "--junit", "--config"):
            assert opt in r.output


def test_gate_passes_exit_0(run):
    r = invoke("gate", run, "--target", "tflite-int8", "--max-size", "40KB", "--max-latency-ms", "0.05",
               "--max-accuracy-drop", "0.5", "--min-agreement", "99", "--min-accuracy", "97%")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split()[:5] == ["check", "target", "measured", "limit", "result"]
    rows = [l.split() for l in lines[2:7]]
    assert [row[0] for row in rows] == ["size", "latency_p50", "accuracy", "accuracy_drop", "agreement"]
    assert all("PASS" in row for row in rows)
    assert "36,200 B" in r.output and "<= 40,000 B" in r.output and "99.44 %" in r.output
    assert lines[-1] == "All 5 gates passed (tflite-int8)."


def test_gate_fails_exit_1(run, tmp_path):
    junit = tmp_path / "gates.xml"
    r = invoke("gate", run, "--target", "tflite-int8", "--max-size", "35KiB", "--max-latency-ms", "0.05",
               "--junit", junit)
    assert r.exit_code == 1
    assert "FAIL" in r.output and "Error: 1 of 2 gates failed: tflite-int8 size 36,200 B > 35,840 B." in r.output
    assert "Traceback" not in r.output
    root = ET.parse(junit).getroot()
    assert root.get("failures") == "1" and root.get("tests") == "2"


@pytest.mark.parametrize("args, needle", [
    (["--target", "tflite-int8"], "No gate limits given"),
    (["--target", "tflite_int8", "--max-size", "40KB"], 'validated tflite, tflite-int8, onnx. Did you mean "tflite-int8"'),
    (["--max-size", "40 kilobytes"], "--max-size must be a size"),
    (["--max-latency-ratio", "tflite-int8=0.8", "--max-size", "1MB"], "--max-latency-ratio must name two targets"),
    (["--max-size-growth", "5%"], "give one with --baseline"),
    (["--min-agreement", "high"], "--min-agreement must be a number"),
])
def test_gate_usage_errors_exit_2(run, args, needle):
    r = invoke("gate", run, *args)
    assert r.exit_code == 2, r.output
    assert needle in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_gate_input_errors_exit_2(run, tmp_path):
    (run.parent / "model_int8.tflite").write_bytes(b"\0" * 36_200)
    r = invoke("gate", run, "--max-size", "40KB")
    assert r.exit_code == 2 and "sha256 mismatch): model_int8.tflite" in r.output
    foreign = tmp_path / "other.json"
    foreign.write_text('{"name": "not ours"}')
    r = invoke("gate", foreign, "--max-size", "40KB")
    assert r.exit_code == 2 and "is not an edgekit manifest" in r.output
    r = invoke("gate", tmp_path / "missing.json", "--max-size", "40KB")
    assert r.exit_code == 2 and "does not exist" in r.output


def test_junit_is_not_overwritten_without_force(run, tmp_path):
    junit = tmp_path / "gates.xml"
    junit.write_text("old")
    r = invoke("gate", run, "--max-size", "1MB", "--junit", junit)
    assert r.exit_code == 2 and "--force" in r.output and junit.read_text() == "old"
    r = invoke("gate", run, "--max-size", "1MB", "--junit", junit, "--force")
    assert r.exit_code == 0 and ET.parse(junit).getroot().get("tests") == "3"


def test_config_file_with_overrides(run, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("data: {spec: digits}\ngates:\n  target: tflite-int8\n  max_size: 30KB\n  min_agreement: 99\n")
    r = invoke("gate", run, "--config", recipe)
    assert r.exit_code == 1 and "<= 30,000 B" in r.output
    r = invoke("gate", run, "--config", recipe, "--max-size", "40KB")  # the command line wins
    assert r.exit_code == 0 and "<= 40,000 B" in r.output and ">= 99.00 %" in r.output
    recipe.write_text("gates:\n  max_sise: 30KB\n")
    r = invoke("gate", run, "--config", recipe)
    assert r.exit_code == 2 and "Unknown key 'gates.max_sise'" in r.output
    recipe.write_text("gates: [\n")
    r = invoke("gate", run, "--config", recipe)
    assert r.exit_code == 2 and "is not a readable YAML/JSON file" in r.output


def test_baseline_and_json(tmp_path):
    base = make_run(tmp_path / "base")
    new = make_run(tmp_path / "new", size_scale=1.03)
    r = invoke("gate", new, "--target", "tflite-int8", "--baseline", base, "--max-size-growth", "5%",
               "--max-accuracy-fall", "0.5", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["passed"] and [c["name"] for c in d["checks"]] == ["size_growth", "accuracy_fall"]
    assert d["checks"][0]["measured"] == pytest.approx(100 * (int(36_200 * 1.03) - 36_200) / 36_200)
    r = invoke("gate", new, "--target", "tflite-int8", "--baseline", base, "--max-size-growth", "2%")
    assert r.exit_code == 1 and "size_growth" in r.output


def test_gate_does_not_import_tensorflow(run):
    code = ("import sys\nfrom edgekit.cli.main import cli\n"
            f"try:\n    cli(['gate', {str(run)!r}, '--max-size', '1MB'], prog_name='edgekit')\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "heavy = [m for m in ('tensorflow', 'tf_keras', 'onnxruntime', 'tf2onnx') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout


@pytest.mark.parametrize("content, needle", [
    ("max_size: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("max_size: 40KB\nwhen: 2024-13-45\n", "not a readable YAML/JSON file: month must be in 1..12"),
    ("max_size: \x00\n", "not a readable YAML/JSON file"),
])
def test_gate_config_file_errors_are_one_line(run, tmp_path, content, needle):
    """Found by the CLI fuzzer: deep nesting and dates YAML cannot build were tracebacks."""
    cfg = tmp_path / "gates.yaml"
    cfg.write_text(content)
    r = invoke("gate", run, "--config", cfg)
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit), r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: --config") and needle in lines[0], r.stderr
