"""Evaluate a Keras model: accuracy, loss, confusion matrix, batch-1 and batched latency."""
from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.data import Dataset
from edgekit.errors import InputError


def keras_latency(model, x: np.ndarray, runs: int = 100, warmup: int = 10, batch: int = 1) -> dict[str, float]:
    """Latency of ``model(x[:batch])`` in a compiled tf.function (what serving a Keras model costs)."""
    from edgekit.runtimes.keras import KerasRunner

    out = KerasRunner(model).latency(x[:batch], runs=runs, warmup=warmup)
    del out["samples_us"]
    out["batch"] = batch
    out["images_per_second"] = batch / (out["p50_ms"] / 1e3)
    return out


def evaluate(model: Any, dataset: Dataset, runs: int = 100) -> dict[str, Any]:
    """Holdout accuracy, loss, confusion matrix (rows: true, cols: predicted) and latency."""
    from edgekit.models import check_fits, load

    handle = load(model)
    check_fits(handle, dataset)
    probs = handle.predict(dataset.x_test)  # the model's own framework, whatever the format
    y = dataset.y_test
    pred = probs.argmax(1)
    if len(y) and y.max() >= probs.shape[1]:
        raise InputError(f"The dataset has label {int(y.max())} but the model predicts {probs.shape[1]} classes "
                         f"(0 to {probs.shape[1] - 1}); evaluate it on a dataset with those classes.")
    k = max(dataset.info.num_classes, probs.shape[1])  # the data may hold fewer classes than the model
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y, pred), 1)
    p = np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0)
    out: dict[str, Any] = {"test_accuracy": float((pred == y).mean()), "test_loss": float(-np.log(p).mean()),
                           "confusion_matrix": cm.tolist(), "format": handle.format, "framework": handle.framework}
    if not handle.is_keras:  # Keras latency only when there is a Keras model
        return out
    model = handle.model
    return {
        **out,
        "latency_batch1": keras_latency(model, dataset.x_test, runs=runs),
        "latency_batched": keras_latency(model, dataset.x_test, runs=max(10, runs // 10), batch=min(256, len(dataset.x_test))),
    }
