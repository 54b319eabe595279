"""Evaluate a Keras model: accuracy, loss, confusion matrix, batch-1 and batched latency."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.data import Dataset
from edgekit.errors import InputError
from edgekit.train.trainer import test_metrics


def check_fits(model, dataset: Dataset) -> None:
    """InputError when the model's input or output does not fit the dataset."""
    want = tuple(int(d) if d is not None else None for d in model.input_shape[1:])
    have = dataset.info.input_shape
    if len(want) != len(have) or any(w is not None and w != h for w, h in zip(want, have)):
        raise InputError(f"Model input shape {want} does not fit dataset images {have}.")
    classes = int(model.output_shape[-1])
    if classes < dataset.info.num_classes:
        raise InputError(f"Model predicts {classes} classes but the dataset has {dataset.info.num_classes}.")


def keras_latency(model, x: np.ndarray, runs: int = 100, warmup: int = 10, batch: int = 1) -> dict[str, float]:
    """Latency of ``model(x[:batch])`` in a compiled tf.function (what serving a Keras model costs)."""
    from edgekit.runtimes.keras import KerasRunner

    out = KerasRunner(model).latency(x[:batch], runs=runs, warmup=warmup)
    del out["samples_us"]
    out["batch"] = batch
    out["images_per_second"] = batch / (out["p50_ms"] / 1e3)
    return out


def evaluate(model, dataset: Dataset, runs: int = 100) -> dict[str, Any]:
    """Holdout accuracy, loss, confusion matrix (rows: true, cols: predicted) and latency."""
    if isinstance(model, (str, Path)):
        from edgekit.models import load_model

        model = load_model(model)
    check_fits(model, dataset)
    probs = model.predict(dataset.x_test, batch_size=256, verbose=0)
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
