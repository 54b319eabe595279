"""Interrupted training: SIGKILL/SIGTERM/SIGINT mid-run, then --resume with a continuous history."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit.cli.main import cli
from edgekit.train import TrainConfig, train
from edgekit.train.resume import TrainingInterrupted, backup_dir

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 6
# cnn at batch 16 on 1,500 digits: about 0.5 s per epoch here, so a kill lands mid-epoch
ARGS = ["train", "--model", "cnn", "--epochs", str(EPOCHS), "--batch-size", "16", "--limit", "1500",
        "--schedule", "exponential", "--decay-rate", "0.5", "--lr", "0.002"]


def _start(out: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "edgekit.cli.main", *ARGS, "--out", str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)


def _wait_for(log: Path, text: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert proc.poll() is None, log.read_text()[-2000:]
        assert time.monotonic() < deadline, f"no {text!r} in time: {log.read_text()[-2000:]}"
        time.sleep(0.02)


def _resume(out: Path):
    return CliRunner().invoke(cli, [*ARGS, "--out", str(out), "--resume"])


def _epochs(path: Path) -> list[int]:
    return [r["epoch"] for r in json.loads(path.read_text())]


def test_sigkill_mid_epoch_then_resume_gives_all_epochs_and_a_continuous_history(tmp_path):
    out, log = tmp_path / "run", tmp_path / "train.log"
    proc = _start(out, log)
    try:
        _wait_for(log, f"epoch 2/{EPOCHS}", proc)
        time.sleep(0.2)  # into epoch 3
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    saved = _epochs(backup_dir(out) / "history.json")
    assert saved[:2] == [1, 2] and len(saved) < EPOCHS
    assert not (out / "model.keras").exists()

    again = CliRunner().invoke(cli, [*ARGS, "--out", str(out)])  # no --resume, no --force: refused
    assert again.exit_code == 2 and "interrupted training run" in again.output and "--resume" in again.output

    res = _resume(out)
    assert res.exit_code == 0, res.output
    assert f"epoch 1/{EPOCHS} " not in res.output  # continued, not started over
    hist = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in hist] == list(range(1, EPOCHS + 1))
    # the restored optimizer step count drives the schedule: lr halves every epoch throughout
    for r in hist:
        assert r["lr"] == pytest.approx(0.002 * 0.5 ** (r["epoch"] - 1), rel=1e-5)
    assert hist[-1]["loss"] < hist[0]["loss"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["train"]["metrics"]["epochs_run"] == EPOCHS
    assert manifest["stages"]["train"]["metrics"]["test_accuracy"] > 0.8
    assert not backup_dir(out).exists()  # deleted once model.keras is written


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_stop_with_one_line_saying_how_to_resume(tmp_path, sig, code):
    out, log = tmp_path / "run", tmp_path / "train.log"
    proc = _start(out, log)
    try:
        _wait_for(log, f"epoch 1/{EPOCHS}", proc)
        proc.send_signal(sig)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    errors = [ln for ln in text.splitlines() if ln.startswith("Error:")]
    assert rc == code and len(errors) == 1 and "Traceback" not in text, text[-2000:]
    assert f"stopped by {sig.name}" in errors[0] and "--resume" in errors[0] and str(backup_dir(out)) in errors[0]
    assert (backup_dir(out) / "run.json").is_file() and not (out / "model.keras").exists()
    res = _resume(out)
    assert res.exit_code == 0, res.output
    assert _epochs(out / "history.json") == list(range(1, EPOCHS + 1))


# ---------------------------------------------------------------- in-process: the API and its checks


def _interrupted(small_digits, out: Path, at_epoch: int = 2, **cfg) -> TrainConfig:
    """Train until ``at_epoch`` has ended, then raise KeyboardInterrupt (as Ctrl-C would)."""
    config = TrainConfig(model="cnn-small", epochs=4, lr=0.003, **cfg)

    def progress(msg: str) -> None:
        if msg.startswith(f"epoch {at_epoch}/"):
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as e:
        train(config, small_digits, out=out, progress=progress)
    assert e.value.exit_code == 130 and "stopped by SIGINT" in str(e.value)
    return config


def test_api_resume_continues_and_rejects_a_different_config_or_dataset(small_digits, digits, tmp_path):
    out = tmp_path / "run"
    config = _interrupted(small_digits, out)
    # the epoch log runs before the checkpoint: epoch 2's state may or may not be saved
    assert len(json.loads((backup_dir(out) / "history.json").read_text())) in (1, 2)
    with pytest.raises(Exception, match="holds an interrupted training run"):
        train(config, small_digits, out=out)
    with pytest.raises(Exception, match=r"epochs=4 \(now 5\)"):
        train(config.replace(epochs=5), small_digits, out=out, resume=True)
    with pytest.raises(Exception, match="dataset"):
        train(config, digits, out=out, resume=True)
    res = train(config, small_digits, out=out, resume=True)
    assert [r["epoch"] for r in res.history] == [1, 2, 3, 4]
    assert res.metrics["epochs_run"] == 4 and not backup_dir(out).exists()
    with pytest.raises(Exception, match="finished run; there is nothing to resume"):
        train(config, small_digits, out=out, resume=True)


def test_resumed_run_ends_bit_identical_to_an_uninterrupted_one(small_digits, tmp_path):
    """Each epoch's batch order is keyed by (seed, epoch), and the optimizer state is restored:
    interrupting and resuming changes nothing, not even the last bit of a weight."""
    import numpy as np

    config = _interrupted(small_digits, tmp_path / "run", at_epoch=3)
    resumed = train(config, small_digits, out=tmp_path / "run", resume=True)
    full = train(config, small_digits, out=tmp_path / "full")
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in full.history]
    for a, b in zip(resumed.model.get_weights(), full.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_force_starts_an_interrupted_run_over(small_digits, tmp_path):
    out = tmp_path / "run"
    config = _interrupted(small_digits, out, at_epoch=3)
    res = train(config, small_digits, out=out, force=True)
    assert [r["epoch"] for r in res.history] == [1, 2, 3, 4] and res.metrics["epochs_run"] == 4
    assert not backup_dir(out).exists()


def test_cli_resume_usage_errors(tmp_path):
    r = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "none"), "--resume"])
    assert r.exit_code == 2 and "nothing to resume" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "none"), "--resume", "--force"])
    assert r.exit_code == 2 and "give one of them" in r.output


def test_recipe_run_resumes_an_interrupted_train_stage(tmp_path):
    """``edgekit run`` again continues the interrupted train stage instead of starting over."""
    from edgekit.recipe import load_recipe
    from edgekit.recipe.run import run

    path = tmp_path / "train-only.yaml"
    path.write_text("name: t\ndata: {spec: digits, limit: 600}\nmodel: {name: cnn-small}\n"
                    "train: {epochs: 3, lr: 0.003}\n")
    recipe = load_recipe(path)
    said: list[str] = []

    def stop_at_two(msg: str) -> None:
        said.append(msg)
        if msg.strip().startswith("epoch 2/"):
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        run(recipe, tmp_path / "r", progress=stop_at_two, raise_on_gate_failure=False)
    said.clear()
    result = run(recipe, tmp_path / "r", progress=said.append, raise_on_gate_failure=False)
    assert any("resuming the interrupted training" in m for m in said)
    assert not any(m.strip().startswith("epoch 1/") for m in said)
    hist = json.loads((tmp_path / "r" / "train" / "history.json").read_text())
    assert [r["epoch"] for r in hist] == [1, 2, 3]
    assert result.stages["train"]["status"] == "ran"
