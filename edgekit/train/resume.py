"""Resumable training: per-epoch state under ``OUT/backup``, ``--resume``, clean stops on signals.

A training run with an output folder keeps, after every completed epoch:

- ``OUT/backup/chief/``: Keras ``BackupAndRestore`` checkpoint (weights, optimizer state,
  epoch), written by TensorFlow's checkpoint manager (the old one stays valid until the
  new one is complete);
- ``OUT/backup/history.json``: the per-epoch rows so far (atomic write);
- ``OUT/backup/run.json``: the run's config and dataset fingerprint (written first).

A run killed in any way (Ctrl-C, SIGTERM, SIGKILL, power loss) therefore leaves the last
completed epoch on disk; ``--resume`` with the same options restores it and trains the
remaining epochs, and the history it writes is continuous (rows 1..N). SIGINT and SIGTERM
stop the run at once with one line saying how to resume. The backup is deleted only after
the final ``model.keras`` is written.
"""
from __future__ import annotations

import contextlib
import shutil
import signal
from pathlib import Path
from typing import Any, Iterator

from edgekit.artifacts import read_json, write_json
from edgekit.errors import EdgekitError, UsageError

BACKUP_DIR = "backup"
RUN_FILE = "run.json"
HISTORY_FILE = "history.json"


class TrainingInterrupted(EdgekitError):
    """SIGINT or SIGTERM stopped training; the last completed epoch is saved (exit 128+signal)."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


def backup_dir(out: str | Path) -> Path:
    return Path(out) / BACKUP_DIR


def saved_run(out: str | Path) -> dict[str, Any] | None:
    """The interrupted run's ``run.json`` under ``OUT/backup``, or None when there is none."""
    p = backup_dir(out) / RUN_FILE
    if not p.is_file():
        return None
    try:
        data = read_json(p)
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        return {"config": {}, "dataset_sha256": None, "corrupt": True}
    return data


def saved_history(out: str | Path) -> list[dict[str, float]]:
    """The per-epoch rows saved so far (empty when missing or unreadable)."""
    try:
        rows = read_json(backup_dir(out) / HISTORY_FILE)
    except (OSError, ValueError):
        return []
    return [r for r in rows if isinstance(r, dict) and isinstance(r.get("epoch"), int)] \
        if isinstance(rows, list) else []


def precheck(out: str | Path, resume: bool, force: bool) -> dict[str, Any] | None:
    """Check ``OUT``'s backup against ``resume``/``force`` before any work; returns the saved run.

    - no backup: ``resume`` is a usage error (nothing to resume);
    - a backup without ``resume`` or ``force``: a usage error saying how to continue;
    - a backup with ``force`` (and no ``resume``): None, the run starts over.
    """
    out = Path(out)
    saved = saved_run(out) if backup_dir(out).is_dir() else None
    if saved is None:
        if resume:
            what = "a finished run" if (out / "model.keras").exists() else "no interrupted run"
            raise UsageError(f"--resume: {str(out)!r} holds {what}; there is nothing to resume. "
                             "Drop --resume to train (add --force to overwrite).")
        return None
    if not resume:
        if force:
            return None
        done, epochs = len(saved_history(out)), saved["config"].get("epochs", "?")
        raise UsageError(f"{str(out)!r} holds an interrupted training run ({done} of {epochs} epochs done). "
                         "Continue it with --resume, or start over with --force.")
    if saved.get("corrupt"):
        raise UsageError(f"--resume: {str(backup_dir(out) / RUN_FILE)!r} is unreadable, so the interrupted run "
                         "cannot be checked. Start over with --force.")
    return saved


def differences(saved: dict[str, Any], config_dict: dict[str, Any], dataset_sha256: str) -> list[str]:
    """How this run's config and data differ from the saved run's (empty: it may continue)."""
    diff = [f"{k}={saved['config'].get(k)!r} (now {v!r})" for k, v in config_dict.items()
            if saved["config"].get(k) != v]
    if saved.get("dataset_sha256") != dataset_sha256:
        diff.append("the dataset (its content hash differs)")
    return diff


def check_resume(out: str | Path, saved: dict[str, Any] | None, config_dict: dict[str, Any],
                 dataset_sha256: str) -> bool:
    """With ``saved`` from :func:`precheck`: True when this run continues the backup (same
    config and data), False when it starts fresh (an old backup is deleted)."""
    if saved is None:
        shutil.rmtree(backup_dir(out), ignore_errors=True)
        return False
    diff = differences(saved, config_dict, dataset_sha256)
    if diff:
        raise UsageError(f"--resume: this command differs from the interrupted run in {str(out)!r}: "
                         f"{'; '.join(diff)}. Resume with the same options, or start over with --force.")
    return True


def can_resume(out: str | Path, config_dict: dict[str, Any], dataset_sha256: str) -> bool:
    """True when ``OUT`` holds an interrupted run of exactly this config and data."""
    saved = saved_run(out)
    return bool(saved) and not saved.get("corrupt") and not differences(saved, config_dict, dataset_sha256)


def write_run_file(out: str | Path, config_dict: dict[str, Any], dataset_sha256: str) -> None:
    write_json(backup_dir(out) / RUN_FILE, {"config": config_dict, "dataset_sha256": dataset_sha256})


def history_saver(out: str | Path, previous: list[dict[str, float]]):
    """A Keras callback class that saves ``previous`` rows + this run's rows after every epoch.

    Put it before BackupAndRestore: the rows file may then be one epoch ahead of the
    checkpoint, never behind; :func:`merge_history` cuts ``previous`` at the restored epoch."""
    from edgekit._lazy import keras

    class _HistorySaver(keras().callbacks.Callback):
        def __init__(self, rows_source):
            super().__init__()
            self.rows_source = rows_source

        def on_epoch_end(self, epoch, logs=None):
            write_json(backup_dir(out) / HISTORY_FILE, merge_history(previous, self.rows_source()))

    return _HistorySaver


def merge_history(previous: list[dict[str, float]], rows: list[dict[str, float]]) -> list[dict[str, float]]:
    """Rows of the earlier attempts up to where this attempt started, then this attempt's rows."""
    if not rows:
        return previous
    return [r for r in previous if r["epoch"] < rows[0]["epoch"]] + rows


def finish(out: str | Path) -> None:
    """Delete the backup once the final model is on disk."""
    shutil.rmtree(backup_dir(out), ignore_errors=True)


@contextlib.contextmanager
def stop_on_signals(describe) -> Iterator[None]:
    """Turn SIGINT/SIGTERM during training into :class:`TrainingInterrupted` at once (Keras
    fit loops stop cleanly); ``describe(signal_name)`` gives the message."""
    from edgekit.interrupt import handling, pending

    def _raise(signum, frame):
        raise TrainingInterrupted(describe(signal.Signals(signum).name), signum)

    if pending():  # a stop that arrived before training started (in a CLI command)
        _raise(pending(), None)
    try:
        with handling(_raise):
            yield
    except KeyboardInterrupt:  # a SIGINT that arrived inside code that re-raised it as such
        raise TrainingInterrupted(describe("SIGINT"), int(signal.SIGINT)) from None
