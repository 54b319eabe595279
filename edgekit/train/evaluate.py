"""Evaluate a Keras model: accuracy, loss, confusion matrix, batch-1 and batched latency."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from edgekit.data import Dataset
from edgekit.train.trainer import test_metrics


def percentiles(samples_s: list[float]) -> dict[str, float]:
    """p50/p90/mean in milliseconds of a list of durations in seconds."""
    a = np.asarray(samples_s) * 1e3
    return {"p50_ms": float(np.percentile(a, 50)), "p90_ms": float(np.percentile(a, 90)),
            "mean_ms": float(a.mean()), "runs": int(a.size)}


def keras_latency(model, x: np.ndarray, runs: int = 100, warmup: int = 10, batch: int = 1) -> dict[str, float]:
    """Latency of ``model(x[:batch])`` in a compiled tf.function (what serving a Keras model costs)."""
    from edgekit._lazy import tf

    fn = tf().function(lambda t: model(t, training=False))
    sample = tf().constant(x[:batch])
    for _ in range(warmup):
        fn(sample)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(sample).numpy()
        times.append(time.perf_counter() - t0)
    out = percentiles(times)
    out["batch"] = batch
    out["images_per_second"] = batch / (out["p50_ms"] / 1e3)
    return out


def evaluate(model: Any, dataset: Dataset, runs: int = 100) -> dict[str, Any]:
    """Holdout accuracy, loss, confusion matrix (rows: true, cols: predicted) and latency."""
    from edgekit.models import check_fits, load

    handle = load(model)
    check_fits(handle, dataset)
    model = handle.keras_model("evaluate")
    probs = handle.predict(dataset.x_test)
    pred = probs.argmax(1)
    k = dataset.info.num_classes
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (dataset.y_test, pred), 1)
    return {
        **test_metrics(model, dataset),
        "confusion_matrix": cm.tolist(),
        "latency_batch1": keras_latency(model, dataset.x_test, runs=runs),
        "latency_batched": keras_latency(model, dataset.x_test, runs=max(10, runs // 10), batch=min(256, len(dataset.x_test))),
    }
