"""LiteRT: float and int8 .tflite equal Keras within tolerance; load errors are InputErrors."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import InputError
from edgekit.runtimes import make_runner
from edgekit.runtimes.litert import LiteRTRunner
from edgekit.vocab import LITERT


def test_float_tflite_equals_keras(tiny):
    r = make_runner(LITERT, tiny.tflite)
    assert r.runtime == LITERT and r.threads == 1  # DEFAULT_THREADS
    assert np.abs(r.predict(tiny.x) - tiny.ref).max() < 1e-5
    assert make_runner(LITERT, tiny.tflite.read_bytes(), threads=2).threads == 2  # bytes load too


def test_int8_tflite_dequantizes_to_keras_probabilities(tiny):
    r = LiteRTRunner(tiny.tflite_int8)
    assert r.in_dtype == np.int8 and r.out_dtype == np.int8
    p = r.predict(tiny.x)
    assert p.dtype == np.float32 and np.abs(p - tiny.ref).max() < 0.05


def test_latency_reports_percentiles_and_threads(tiny):
    lat = make_runner(LITERT, tiny.tflite_int8).latency(tiny.x[:1], runs=20, warmup=2)
    assert lat["runs"] == 20 and lat["threads"] == 1 and 0 < lat["p50_ms"] <= lat["p90_ms"]


def test_bytes_that_are_no_model_are_an_input_error():
    with pytest.raises(InputError, match="^LiteRT cannot load the model: "):
        LiteRTRunner(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 64)


def test_compression_accuracy_runs_on_the_runner(tiny):
    from edgekit.compress.metrics import tflite_accuracy

    ds = type("D", (), {"x_test": tiny.x, "y_test": tiny.ref.argmax(1)})()
    assert tflite_accuracy(tiny.tflite.read_bytes(), ds) == 1.0
    ds.y_test = (tiny.ref.argmax(1) + 1) % 3
    assert tflite_accuracy(tiny.tflite.read_bytes(), ds) == 0.0
