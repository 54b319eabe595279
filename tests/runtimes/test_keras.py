"""The Keras runtime: a model object or a file, the reference probabilities."""
from __future__ import annotations

import numpy as np

from edgekit.runtimes import make_runner
from edgekit.vocab import KERAS


def test_keras_predicts_the_models_own_probabilities(tiny):
    assert np.array_equal(make_runner(KERAS, tiny.model).predict(tiny.x), tiny.ref)
    loaded = make_runner(KERAS, tiny.keras)  # through edgekit's safe loader
    assert loaded.runtime == KERAS and np.abs(loaded.predict(tiny.x) - tiny.ref).max() < 1e-6


def test_keras_latency_reports_percentiles(tiny):
    r = make_runner(KERAS, tiny.model).latency(tiny.x[:1], runs=5, warmup=1)
    assert r["runs"] == 5 and 0 < r["p50_ms"] <= r["p90_ms"] and len(r["samples_us"]) == 5


def test_train_evaluate_latency_uses_the_keras_runner(tiny):
    from edgekit.train.evaluate import keras_latency

    r = keras_latency(tiny.model, tiny.x, runs=4, warmup=1, batch=2)
    assert set(r) == {"p50_ms", "p90_ms", "mean_ms", "runs", "batch", "images_per_second"}
    assert r["runs"] == 4 and r["batch"] == 2 and r["images_per_second"] == 2 / (r["p50_ms"] / 1e3)
