"""Reliability figures: what the per-epoch backup costs, what a SIGKILL loses, what doctor costs.

1. Backup overhead: the reference CNN on the shared MNIST set, ``train()`` with an output folder
   (a BackupAndRestore checkpoint + history file after every epoch) vs without, alternating,
   median of N; the time is the whole fit (checkpoint writes included).
2. Kill and resume: ``edgekit train`` in a child process, SIGKILL half-way through epoch K,
   then ``--resume``: epochs in the history, work lost, accuracy vs an uninterrupted run.
3. ``edgekit doctor`` wall time.

    python benchmarks/reliability.py [--epochs 5] [--repeats 4] [--kill-epoch 3]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, machine, md_table, mnist_spec_or_exit, save


def backup_overhead(spec: str, epochs: int, repeats: int) -> dict:
    """Fit time with and without an output folder, and the time spent in the backup itself
    (BackupAndRestore's hooks, timed directly: the fit-time difference is within noise)."""
    from edgekit._lazy import keras
    from edgekit.data import load_dataset
    from edgekit.train import TrainConfig, train

    spent: list[float] = []
    K = keras().callbacks.BackupAndRestore
    for hook in ("on_train_begin", "on_epoch_end"):
        def timed(self, *a, _orig=getattr(K, hook), **kw):
            t0 = time.perf_counter()
            _orig(self, *a, **kw)
            spent.append(time.perf_counter() - t0)
        setattr(K, hook, timed)
    ds = load_dataset(spec, seed=0)
    cfg = TrainConfig(model="cnn", epochs=epochs, seed=0)
    train(cfg.replace(epochs=1), ds)  # warm-up (graph building, caches)
    with_out, without = [], []
    for i in range(repeats):
        for kind in (("out", "none") if i % 2 == 0 else ("none", "out")):
            if kind == "out":
                with tempfile.TemporaryDirectory() as d:
                    with_out.append(train(cfg, ds, out=Path(d) / "run").metrics["train_seconds"])
            else:
                without.append(train(cfg, ds).metrics["train_seconds"])
    a, b = statistics.median(with_out), statistics.median(without)
    backup = sum(spent) / repeats
    return {"fit seconds, with --out (backup every epoch)": a, "fit seconds, no output folder": b,
            "fit-time difference": a / b - 1, "time in the backup per run (s)": backup,
            "backup share of the fit": backup / a}


def kill_and_resume(spec: str, epochs: int, kill_epoch: int) -> dict:
    args = [sys.executable, "-m", "edgekit.cli.main", "train", "--model", "cnn", "--epochs", str(epochs),
            "--dataset", spec, "--quiet"]
    with tempfile.TemporaryDirectory() as d:
        out, log = Path(d) / "run", Path(d) / "log"
        ref = subprocess.run([*args, "--out", str(Path(d) / "ref")], cwd=ROOT, capture_output=True, text=True,
                             timeout=1800)
        assert ref.returncode == 0, ref.stderr[-2000:]
        ref_hist = json.loads((Path(d) / "ref" / "history.json").read_text())
        epoch_s = statistics.median(r["seconds"] for r in ref_hist[1:])
        proc = subprocess.Popen([*args[:-1], "--out", str(out)], cwd=ROOT, stderr=open(log, "w"),
                                stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        while f"epoch {kill_epoch - 1}/{epochs}" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-2000:]
            time.sleep(0.01)
        time.sleep(epoch_s / 2)  # half-way through epoch kill_epoch
        t_kill = time.perf_counter()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        saved = len(json.loads((out / "backup" / "history.json").read_text()))
        t0 = time.perf_counter()
        res = subprocess.run([*args, "--out", str(out), "--resume"], cwd=ROOT, capture_output=True, text=True,
                             timeout=1800)
        resume_s = time.perf_counter() - t0
        assert res.returncode == 0, res.stderr[-2000:]
        hist = json.loads((out / "history.json").read_text())
        man = json.loads((out / "manifest.json").read_text())
        ref_man = json.loads((Path(d) / "ref" / "manifest.json").read_text())
        del t_kill
    return {
        "killed in epoch": kill_epoch, "epochs saved at the kill": saved,
        "history after resume": f"{hist[0]['epoch']}..{hist[-1]['epoch']} ({len(hist)} rows)",
        "work lost (s, the partial epoch)": epoch_s / 2,
        "resume command wall (s)": resume_s,
        "test accuracy, resumed": man["stages"]["train"]["metrics"]["test_accuracy"],
        "test accuracy, uninterrupted": ref_man["stages"]["train"]["metrics"]["test_accuracy"],
    }


def doctor_seconds() -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "edgekit.cli.main", "doctor"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--kill-epoch", type=int, default=3)
    ap.add_argument("--resume-epochs", type=int, default=5)
    a = ap.parse_args()
    spec = mnist_spec_or_exit()
    over = backup_overhead(spec, a.epochs, a.repeats)
    kill = kill_and_resume(spec, a.resume_epochs, a.kill_epoch)
    doc = doctor_seconds()
    rows = [{"measure": k, "value": (f"{v:+.1%}" if k in ("fit-time difference", "backup share of the fit") else v)} for k, v in {**over, **kill}.items()]
    rows.append({"measure": "edgekit doctor wall (s)", "value": doc})
    text = (f"# Reliability ({machine()})\n\nreference CNN, shared MNIST (8,000 train), {a.epochs} epochs x "
            f"{a.repeats} for the overhead; {a.resume_epochs} epochs for kill/resume\n\n"
            + md_table(rows, ["measure", "value"]))
    print(text)
    print(f"saved {save('reliability.md', text)}")


if __name__ == "__main__":
    main()
