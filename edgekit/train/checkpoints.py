"""Fault tolerance of multi-worker runs: BackupAndRestore checkpoints under ``OUT/backup``.

Keras' ``BackupAndRestore`` saves the training state at the end of every epoch; when a
worker dies, the collectives of the others fail, and the job is restarted (every worker
with the same command): each worker then restores the last completed epoch and the
cluster continues from there. The chief writes ``OUT/backup``; other workers write a
``workertemp_<i>`` folder beside it and delete it. ``OUT`` must be on storage that every
worker sees for the restore to find the chief's checkpoint. A finished fit deletes the
checkpoints, and the empty folders are removed here, so only the chief's artifacts remain.
"""
from __future__ import annotations

from pathlib import Path

from edgekit._lazy import keras

BACKUP_DIR = "backup"


def restart_callbacks(strategy_name: str, out: str | Path | None) -> list:
    """``[BackupAndRestore(OUT/backup)]`` for multi-worker runs with an output folder, else ``[]``."""
    if strategy_name != "multiworker" or out is None:
        return []
    return [keras().callbacks.BackupAndRestore(str(Path(out) / BACKUP_DIR))]


def remove_empty_backup(out: str | Path | None, out_existed: bool) -> None:
    """After a finished fit: drop the empty ``OUT/backup``, and ``OUT`` itself when this run
    created it and left nothing in it (a non-chief worker)."""
    if out is None:
        return
    p = Path(out)
    for d in ([p / BACKUP_DIR] if out_existed else [p / BACKUP_DIR, p]):
        try:
            d.rmdir()  # only succeeds when empty
        except OSError:
            pass
