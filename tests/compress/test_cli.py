"""``edgekit compress`` through click's CliRunner."""
from __future__ import annotations

import json

from click.testing import CliRunner

from edgekit.cli.main import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_help_lists_the_options():
    r = run("compress", "--help")
    assert r.exit_code == 0
    for opt in ("--prune", "--prune-schedule", "--prune-layer", "--skip-layer", "--prune-structure", "--cluster",
                "--cluster-init", "--cluster-layer", "--quantize", "--epochs-per-stage", "--optimizer", "--lr",
                "--out", "--force", "--dataset"):
        assert opt in r.output, opt


def test_bad_options_exit_2_with_one_line(trained_small, tmp_path):
    _, path = trained_small
    out = tmp_path / "out"
    for args, words in (
        (["--prune-layer", "dense1"], "--prune-layer expects NAME=VALUE"),
        (["--prune", "1.5"], "[0, 1)"),
        (["--cluster", "1"], ">= 2"),
        (["--prune-layer", "nope=0.5"], "no layer 'nope'. Its layers are: conv1, pool1, conv2"),
    ):
        r = run("compress", path, "--limit", 600, "--out", out, *args)
        assert r.exit_code == 2, r.output
        lines = r.stderr.strip().splitlines()  # notes on where the data comes from may come first
        assert words in lines[-1] and lines[-1].startswith("Error: ") and "Traceback" not in r.output
        assert all(line.startswith(("dataset: ", "Warning: ")) for line in lines[:-1]), lines
    r = run("compress", tmp_path / "missing.keras", "--prune", 0.5, "--out", out)
    assert r.exit_code == 2 and "does not exist" in r.stderr
    assert not out.exists()


def test_cli_run_writes_the_reports(trained_small, tmp_path):
    _, path = trained_small
    out = tmp_path / "run"
    args = ["compress", path, "--dataset", "digits", "--limit", 600, "--prune", 0.5, "--skip-layer", "conv1",
            "--prune-schedule", "polynomial", "--epochs-per-stage", 1, "--representative-size", 50, "--out", out, "-q"]
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert "prune: accuracy" in r.stdout and f"{out}/model.keras" in r.stdout
    report = json.loads((out / "compression.json").read_text())
    per_layer = {x["layer"]: x for x in report["per_layer"]}
    assert abs(per_layer["conv2"]["sparsity"] - 0.5) <= 0.01 and per_layer["conv1"]["sparsity"] == 0
    assert report["config"]["skip_layers"] == ["conv1"] and report["config"]["prune_schedule"] == "polynomial"
    again = run(*args)
    assert again.exit_code == 2 and "--force" in again.stderr
