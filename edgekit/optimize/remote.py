"""One candidate as a job for another process or machine: the input model and the dataset are
shared once (:func:`shared_inputs`), the worker builds and measures the candidate in a temporary
folder (:func:`run_candidate`), and its folder comes back as a tar that :func:`unpack` writes
where the in-process search would have written it."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from edgekit.data import Dataset
from edgekit.optimize.config import OptimizeConfig
from edgekit.parallel.folders import pack, unpack as _extract


def shared_inputs(model_path: Path, dataset: Dataset, config: OptimizeConfig, runtime: str) -> dict[str, Any]:
    """What every candidate job needs, published once: the model file or folder as a tar."""
    return {"model": pack(model_path, model_path.name), "model_name": model_path.name, "dataset": dataset,
            "config": config.to_dict(), "runtime": runtime}


def run_candidate(shared: dict[str, Any], candidate: dict[str, Any]) -> dict[str, Any]:
    """In the worker: build and measure ``candidate``; its metrics and its folder (as a tar)."""
    from edgekit.optimize.measure import build, measure_artifact
    from edgekit.optimize.space import Candidate

    t0 = time.perf_counter()
    config = OptimizeConfig.from_dict(shared["config"])
    dataset = shared["dataset"]
    with tempfile.TemporaryDirectory(prefix="edgekit-candidate-") as tmp:
        root = Path(tmp)
        _extract(shared["model"], root / "input")
        folder = root / "candidate"
        artifact, source, metrics = build(Candidate.from_dict(candidate), root / "input" / shared["model_name"],
                                          dataset, config, folder)
        m = measure_artifact(artifact, shared["runtime"], dataset.x_val, dataset.y_val, config.latency_runs)
        return {"measured": m, "params": metrics.get("params"), "artifact": str(artifact.relative_to(folder)),
                "model": str(source.relative_to(folder)) if source.is_relative_to(folder) else None,
                "seconds": time.perf_counter() - t0, "tar": pack(folder)}


def unpack(job: dict[str, Any], folder: Path) -> tuple[Path, Path | None]:
    """Write a finished job's folder to ``folder``; (its artifact, its compressed model or None)."""
    _extract(job["tar"], folder)
    return folder / job["artifact"], (folder / job["model"]) if job["model"] else None

