"""One sweep run as a job for another process or machine: trained in a temporary folder, its
run folder sent back as a tar (written by the driver where an in-process sweep writes it)."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any


def run_config(dataset: Any, config: dict[str, Any], keep_files: bool) -> dict[str, Any]:
    """In the worker: train ``config`` on ``dataset``; its history, metrics and (``keep_files``) run folder."""
    from edgekit.parallel.folders import pack
    from edgekit.train.config import TrainConfig
    from edgekit.train.trainer import train

    with tempfile.TemporaryDirectory(prefix="edgekit-run-") as tmp:
        folder = Path(tmp) / "run"
        res = train(TrainConfig.from_dict(config), dataset, out=folder if keep_files else None)
        return {"history": res.history, "metrics": res.metrics, "tar": pack(folder) if keep_files else None}
