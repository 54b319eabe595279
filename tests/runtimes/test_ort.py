"""onnxruntime: the float ONNX model equals Keras; IO-bound latency; load errors."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import InputError
from edgekit.runtimes import make_runner
from edgekit.runtimes.ort import OrtRunner
from edgekit.vocab import ONNXRUNTIME


def test_onnx_equals_keras(tiny):
    r = make_runner(ONNXRUNTIME, tiny.onnx)
    assert r.runtime == ONNXRUNTIME and r.threads == 1
    assert np.abs(r.predict(tiny.x) - tiny.ref).max() < 1e-5
    big = np.concatenate([tiny.x] * 20)  # 320 images: predicted in batches of 256
    assert np.abs(r.predict(big) - np.concatenate([tiny.ref] * 20)).max() < 1e-5


def test_latency_reports_percentiles_and_threads(tiny):
    lat = OrtRunner(tiny.onnx.read_bytes(), threads=2).latency(tiny.x[:1], runs=20, warmup=2)
    assert lat["runs"] == 20 and lat["threads"] == 2 and 0 < lat["p50_ms"] <= lat["p90_ms"]


def test_bytes_that_are_no_model_are_an_input_error():
    with pytest.raises(InputError, match="^onnxruntime cannot load the model: "):
        OrtRunner(b"not a protobuf at all")
