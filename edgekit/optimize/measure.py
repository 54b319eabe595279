"""One candidate built the way ``edgekit run`` builds it (compress, then export) and its artifact
measured in its runtime: accuracy, sizes, batch-1 latency."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekit.artifacts import gzip_size
from edgekit.data import Dataset
from edgekit.optimize.config import OptimizeConfig
from edgekit.optimize.space import Candidate


def measure_artifact(path: Path, runtime: str, x: np.ndarray, y: np.ndarray, latency_runs: int) -> dict[str, Any]:
    """Accuracy of the artifact at ``path`` on ``(x, y)`` in ``runtime`` (and its top-1 labels, ``labels``),
    its sizes and its batch-1 latency (1 thread, median, us)."""
    from edgekit.runtimes import make_runner
    from edgekit.validate.metrics import accuracy

    data = Path(path).read_bytes()
    out = make_runner(runtime, path).predict(x)
    acc = accuracy(out, y)
    lat = make_runner(runtime, path, threads=1).latency(x[:1], runs=latency_runs)
    return {"accuracy": float(acc), "labels": np.asarray(out).argmax(-1), "raw_bytes": len(data),
            "gzip_bytes": gzip_size(data),
            "latency_us": float(lat["p50_ms"]) * 1e3}


def build(candidate: Candidate, model_path: Path, dataset: Dataset, config: OptimizeConfig, folder: Path,
          progress: Callable[[str], None] | None = None) -> tuple[Path, Path, dict[str, Any]]:
    """Compress (unless the baseline) and export ``candidate`` into ``folder``: (artifact, the model
    exported, compress metrics or {})."""
    from edgekit.compress import compress
    from edgekit.export import ExportConfig, export
    from edgekit.models import save_model

    cc = candidate.compress_config(config)
    source, metrics = model_path, {}
    if cc is not None:  # the figures compress would add per stage are measured below, once, on the export
        res = compress(model_path, dataset, cc, progress=progress, measure=False)
        source, metrics = save_model(res.model, folder / "compress" / "model.keras"), res.metrics["final"]
    ex = export(source, dataset, [config.target], folder / "export", force=True,
                config=ExportConfig(representative_samples=config.representative_samples))
    return ex.path(config.target), source, metrics
