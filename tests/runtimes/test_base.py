"""Shared runtime helpers: percentiles, timing, (de)quantization, the native-output silencer."""
from __future__ import annotations

import os

import numpy as np
import pytest

from edgekit.runtimes.base import dequantize, percentiles, quantize, quiet_native_output, time_calls


def test_percentiles_on_known_samples():
    p = percentiles([0.001 * i for i in range(1, 11)])  # 1 .. 10 ms
    assert p == {"p50_ms": pytest.approx(5.5), "p90_ms": pytest.approx(9.1), "mean_ms": pytest.approx(5.5),
                 "runs": 10}


def test_time_calls_warms_up_then_times_each_run():
    calls = []
    r = time_calls(lambda: calls.append(1), runs=7, warmup=3)
    assert len(calls) == 10 and r["runs"] == 7 and len(r["samples_us"]) == 7
    assert min(r["samples_us"]) >= 0 and r["p50_ms"] == pytest.approx(np.percentile(r["samples_us"], 50) / 1e3)


def test_quantize_dequantize_with_tensor_params():
    x = np.linspace(0, 1, 256, dtype=np.float32)
    q = quantize(x, 1 / 255, -128, np.dtype(np.int8))
    assert q.dtype == np.int8 and q.min() == -128 and q.max() == 127
    assert np.abs(dequantize(q, 1 / 255, -128) - x).max() < 1 / 255


def test_native_output_is_silenced_and_captured(capfd):
    with quiet_native_output() as out:
        os.write(1, b"native stdout\n")
        os.write(2, b"native stderr\n")
    os.write(1, b"after\n")
    assert out == ["native stdout\nnative stderr\n"]
    assert capfd.readouterr().out == "after\n"  # fds restored
