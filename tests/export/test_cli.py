"""CLI: --help of each command, export/validate end to end, bad inputs as one line and exit 2."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edgekit.cli.main import cli


@pytest.fixture()
def runner():
    return CliRunner()


@pytest.mark.parametrize("command", ["export", "validate", "benchmark"])
def test_help(runner, command):
    r = runner.invoke(cli, [command, "--help"])
    assert r.exit_code == 0, r.output
    assert f"Usage: cli {command}" in r.output or f"Usage: edgekit {command}" in r.output
    assert "--dataset" in r.output


def test_list_targets(runner):
    from edgekit.export import load_targets

    r = runner.invoke(cli, ["export", "--list-targets"])
    assert r.exit_code == 0
    for name in load_targets().names():
        assert f"\n{name} " in r.output
    assert "calibration images" in r.output


def test_export_cli_validates_and_prints_the_table(runner, trained_cnn, tmp_path):
    out = tmp_path / "e"
    r = runner.invoke(cli, ["export", str(trained_cnn[1]), "--target", "tflite", "--target", "tflite-int8",
                            "--dataset", "digits", "--out", str(out), "--representative-samples", "50",
                            "--runs", "5", "-q"])
    assert r.exit_code == 0, r.output
    assert "tflite-int8" in r.output and "agreement" in r.output and "100.00%" in r.output
    v = json.loads((out / "validation.json").read_text())
    assert set(v["targets"]) == {"tflite", "tflite-int8"}
    r2 = runner.invoke(cli, ["export", str(trained_cnn[1]), "--target", "tflite", "--out", str(out), "-q"])
    assert r2.exit_code == 2 and "--force" in r2.output


def test_validate_cli(runner, exported_all, trained_cnn, tmp_path):
    out = exported_all.out_dir
    r = runner.invoke(cli, ["validate", str(out / "model_float32.onnx"), f"micro={out / 'micro/model_int8.tflite'}",
                            "--reference", str(trained_cnn[1]), "--dataset", "digits", "--out", str(tmp_path),
                            "--runs", "3", "--threads", "1", "-q"])
    assert r.exit_code == 0, r.output
    assert "onnx " in r.output and "micro " in r.output and "tflite-micro" in r.output
    m = json.loads((tmp_path / "manifest.json").read_text())["stages"]["validate"]["metrics"]["targets"]
    assert m["onnx"]["threads"] == 1 and m["onnx"]["max_abs_diff"] <= 1e-4 and m["micro"]["arena_bytes"] > 0


@pytest.mark.parametrize("args,needle", [
    (["export", "{model}", "--target", "tflite-int9", "--out", "{tmp}/o"], "Unknown target 'tflite-int9'"),
    (["export", "{tmp}/missing.keras", "--target", "tflite", "--out", "{tmp}/o"], "does not exist"),
    (["export", "{model}", "--out", "{tmp}/o"], "Give at least one --target"),
    (["export", "{model}", "--target", "onnx-int8", "--calibration", "kl", "--out", "{tmp}/o"], "calibration method"),
    (["export", "{model}", "--target", "micro", "--arena-size", "1000", "--out", "{tmp}/o",
      "--representative-samples", "20"], "arena of at least"),
    (["validate", "{tmp}/bad.tflite", "--reference", "{model}"], "not a TFLite flatbuffer"),
    (["validate", "{tmp}/bad.onnx", "--reference", "{model}"], "not a valid ONNX model"),
])
def test_bad_input_is_one_line_exit_2(runner, trained_cnn, tmp_path, args, needle):
    (tmp_path / "bad.tflite").write_bytes(b"\x00" * 64)
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage")
    argv = [a.format(model=trained_cnn[1], tmp=tmp_path) for a in args]
    r = runner.invoke(cli, argv)
    assert r.exit_code == 2, r.output
    assert needle in r.output and "Traceback" not in r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and needle in errors[0]
    assert not (tmp_path / "o").exists() or not any(p.is_file() for p in (tmp_path / "o").rglob("*"))


def test_export_micro_survives_an_interpreter_that_segfaults_on_small_arenas(runner, trained_cnn, tmp_path,
                                                                             monkeypatch):
    """The arena search walks into sizes that crash TFLM (SIGSEGV): each one only restarts its worker."""
    from edgekit.runtimes import tflite_micro
    from tests.runtimes.conftest import crashing_worker

    command, crashes = crashing_worker(tmp_path)
    monkeypatch.setattr(tflite_micro, "arena_worker_command", command)
    monkeypatch.setattr(tflite_micro, "_FOUND", {})
    out = tmp_path / "m"
    r = runner.invoke(cli, ["export", str(trained_cnn[1]), "--target", "micro", "--dataset", "digits", "--out",
                            str(out), "--representative-samples", "20", "--runs", "3", "-q"])
    assert r.exit_code == 0, r.output
    assert crashes() >= 1
    info = json.loads((out / "micro/micro.json").read_text())
    real = tflite_micro.find_arena_size(out / "micro/model_int8.tflite", command=tflite_micro.arena_worker_command)
    assert info["arena_bytes_min"] == real and info["arena_bytes"] >= real
    manifest = json.loads((out / "manifest.json").read_text())
    assert json.dumps(manifest).count(f'"arena_bytes_min": {real}') >= 1


def test_validate_cli_a_runtime_killed_by_a_signal_is_one_line_exit_2(runner, exported_all, trained_cnn, tmp_path,
                                                                      monkeypatch):
    from edgekit.runtimes import isolated
    from tests.runtimes.test_isolated import crash_on_predict

    monkeypatch.setattr(isolated, "runner_command", crash_on_predict)
    model = exported_all.out_dir / "micro/model_int8.tflite"
    r = runner.invoke(cli, ["validate", f"micro={model}", "--reference", str(trained_cnn[1]), "--dataset", "digits",
                            "--out", str(tmp_path), "--runs", "3", "-q"])
    assert r.exit_code == 2, r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in r.output
    assert "predicting" in errors[0] and str(model) in errors[0] and "SIGSEGV" in errors[0]
    assert "tflite-micro" in errors[0]
