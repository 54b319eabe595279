"""Fault tolerance: BackupAndRestore checkpoints under ``OUT/backup`` (see also resume.py).

Keras' ``BackupAndRestore`` saves the training state at the end of every epoch, for every
run with an output folder. In a multi-worker run, when a worker dies, the collectives of
the others fail, and the job is restarted (every worker with the same command plus
``--resume``): each worker then restores the last completed epoch and the cluster
continues from there. The chief writes ``OUT/backup``; other workers write a
``workertemp_<i>`` folder beside it and delete it. ``OUT`` must be on storage that every
worker sees for the restore to find the chief's checkpoint. A finished fit deletes the
checkpoints (after the model is written, resume.finish), and the empty folders are removed
here, so only the chief's artifacts remain.
"""
from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Iterator

from edgekit._lazy import keras, tf
from edgekit.errors import EdgekitError

BACKUP_DIR = "backup"


def restart_callbacks(out: str | Path | None) -> list:
    """``[BackupAndRestore(OUT/backup)]`` for runs with an output folder, else ``[]``.

    The checkpoint is kept when fit ends (``delete_checkpoint=False``): it is deleted only
    once the final model is on disk, so a crash in between loses nothing."""
    if out is None:
        return []
    return [keras().callbacks.BackupAndRestore(str(Path(out) / BACKUP_DIR), delete_checkpoint=False)]


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


class PeerFailed(EdgekitError):
    """A multi-worker run lost a peer mid-training (exit 1); restarting the job resumes it."""


@contextlib.contextmanager
def peer_failures(strategy_name: str, out: str | Path | None) -> Iterator[None]:
    """Turn the collective errors of a lost peer into one line that says how to resume."""
    if strategy_name != "multiworker":
        yield
        return
    errors = tf().errors
    try:
        yield
    except (errors.UnavailableError, errors.DeadlineExceededError, errors.AbortedError,
            errors.CancelledError) as e:
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        first = re.sub(r"\{\{[^}]*\}\}\s*", "", first).strip()
        first = first if len(first) <= 200 else first[:197] + "..."
        resume = (f"restart every worker with the same command plus --resume to resume from the last completed epoch "
                  f"({Path(out) / BACKUP_DIR})" if out is not None else "restart every worker (use --out to be "
                  "able to resume from a checkpoint)")
        raise PeerFailed(f"Multi-worker training stopped because a peer failed or timed out ({first}). "
                         f"To continue, {resume}.") from None
