"""Commands that take a trained model use the dataset its manifest records; other data is refused
for calibration unless --dataset-mismatch-ok."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgekit.cli.main import cli
from edgekit.manifest import update_manifest


def _npz(path: Path, digits) -> Path:
    """The digits images as an npz of its own (same shape and classes, other contents)."""
    x = np.round(np.concatenate([digits.x_train, digits.x_test])[..., 0] * 255).astype(np.uint8)
    y = np.concatenate([digits.y_train, digits.y_test])
    keep = np.arange(len(x)) % 3 != 0  # a different set of images than digits
    np.savez(path, x=x[keep], y=y[keep])
    return path


@pytest.fixture(scope="module")
def npz_model(trained_small, digits, tmp_path_factory):
    """(model path, recorded dataset info): trained_small placed in a run folder whose manifest
    records an npz dataset (the way `edgekit train --dataset npz:...` writes it), seed 3."""
    from edgekit.data import load_dataset

    root = tmp_path_factory.mktemp("npz_run")
    data = _npz(root / "data.npz", digits)
    info = load_dataset(f"npz:{data}", seed=3).info
    run = root / "run"
    run.mkdir()
    shutil.copy(trained_small[1], run / "model.keras")
    update_manifest(run, "train", config={"model": "cnn-small"}, metrics={}, dataset=info)
    return run / "model.keras", info


def _errors(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if ln.startswith("Error:")]


def test_export_without_dataset_uses_the_models_manifest(npz_model, tmp_path):
    model, info = npz_model
    r = CliRunner().invoke(cli, ["export", str(model), "--target", "tflite-int8", "--no-validate",
                                 "--representative-samples", "20", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert f"dataset: {info.spec} (from the model's manifest" in r.output
    recorded = json.loads((tmp_path / "o" / "manifest.json").read_text())["dataset"]
    assert recorded["sha256"] == info.sha256 and recorded["spec"] == info.spec and recorded["seed"] == 3


def test_other_dataset_for_int8_is_refused_in_one_line(npz_model, tmp_path):
    model, info = npz_model
    r = CliRunner().invoke(cli, ["export", str(model), "--target", "tflite-int8", "--dataset", "digits",
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    (line,) = _errors(r.output)
    assert "digits" in line and info.spec in line and "--dataset-mismatch-ok" in line and "contents" in line
    assert not (tmp_path / "o").exists()


def test_mismatch_ok_proceeds_with_a_warning(npz_model, tmp_path):
    model, _ = npz_model
    r = CliRunner().invoke(cli, ["export", str(model), "--target", "tflite-int8", "--dataset", "digits",
                                 "--dataset-mismatch-ok", "--no-validate", "--representative-samples", "20",
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "Warning: the dataset digits" in r.output and "going on (--dataset-mismatch-ok)" in r.output
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["dataset"]["spec"] == "digits"


def test_float_target_on_other_data_only_warns(npz_model, tmp_path):
    model, _ = npz_model
    r = CliRunner().invoke(cli, ["export", str(model), "--target", "tflite", "--dataset", "digits", "--no-validate",
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "Warning: the dataset digits" in r.output and not _errors(r.output)


def test_without_a_manifest_digits_is_used_and_said(trained_small, tmp_path):
    shutil.copy(trained_small[1], tmp_path / "model.keras")
    r = CliRunner().invoke(cli, ["export", str(tmp_path / "model.keras"), "--target", "tflite", "--no-validate",
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "dataset: digits (the default: no manifest beside" in r.output


@pytest.mark.parametrize("command", ["diagnose", "optimize"])
def test_diagnose_and_optimize_refuse_other_data(npz_model, tmp_path, command):
    """Both calibrate on the data: refused before any model work (the files need not be real)."""
    model, info = npz_model
    args = [str(model), str(tmp_path / "a.tflite")] if command == "diagnose" else [str(model)]
    (tmp_path / "a.tflite").write_bytes(b"\x00" * 64)
    r = CliRunner().invoke(cli, [command, *args, "--dataset", "digits", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    (line,) = _errors(r.output)
    assert "digits" in line and info.spec in line and "--dataset-mismatch-ok" in line


def test_recorded_dataset_that_moved_is_one_line(npz_model, tmp_path):
    model, info = npz_model
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(model, run / "model.keras")
    update_manifest(run, "train", config={}, metrics={}, dataset={**info.to_dict(), "spec": "npz:gone/data.npz"})
    r = CliRunner().invoke(cli, ["export", str(run / "model.keras"), "--target", "tflite", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    (line,) = _errors(r.output)
    assert "npz:gone/data.npz" in line and str(Path("gone/data.npz").absolute()) in line and "--dataset" in line


def test_same_data_split_another_way_only_warns(npz_model, tmp_path):
    """--limit/--seed on the model's own data: calibration is sound, the holdout may hold training images."""
    model, info = npz_model
    r = CliRunner().invoke(cli, ["export", str(model), "--target", "tflite-int8", "--dataset", info.spec,
                                 "--limit", "300", "--no-validate", "--representative-samples", "20",
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "Warning: the dataset" in r.output and "split (limit 300 vs None)" in r.output
