import json

import pytest
from click.testing import CliRunner

from edgekit.cli.main import cli


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_train_end_to_end(tmp_path):
    out = tmp_path / "run"
    r = run("train", "--model", "mlp", "--epochs", "2", "--limit", "300", "--out", str(out), "--quiet")
    assert r.exit_code == 0, r.output
    assert "test accuracy" in r.output
    man = json.loads((out / "manifest.json").read_text())
    assert man["stages"]["train"]["config"]["model"] == "mlp"
    assert man["dataset"]["spec"] == "digits"
    again = run("train", "--model", "mlp", "--epochs", "1", "--limit", "300", "--out", str(out), "--quiet")
    assert again.exit_code == 2 and "--force" in again.output


def test_models_lists_params_and_macs():
    r = run("models")
    assert r.exit_code == 0
    assert "93,322" in r.output and "2,794,240" in r.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--model", "resnet", "--out", "X"], "Unknown model 'resnet'"),
        (["train", "--optimizer", "adamm", "--out", "X"], 'Did you mean "adam"'),
        (["train", "--schedule", "linear", "--out", "X"], "Unknown schedule"),
        (["train", "--dataset", "digitz", "--out", "X"], 'Did you mean "digits"'),
        (["train", "--epochs", "0", "--out", "X"], "epochs must be a positive integer"),
        (["train", "--lr", "-1", "--out", "X"], "lr must be a positive number"),
        (["train", "--batch-size", "0", "--out", "X"], "batch_size must be a positive integer"),
        (["train", "--dataset", "idx:/nonexistent", "--out", "X"], "does not exist"),
        (["evaluate", "missing.keras"], "does not exist"),
    ],
)
def test_bad_input_one_line_exit_2(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "X").exists()  # nothing written
