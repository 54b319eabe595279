"""TFLite Micro: the int8 model on TFLM equals LiteRT int8; the measured arena (runs; one byte less fails)."""
from __future__ import annotations

import numpy as np

from edgekit.runtimes import make_runner
from edgekit.runtimes.litert import LiteRTRunner
from edgekit.runtimes.tflite_micro import MicroRunner, _runs, _zero_input, find_arena_size
from edgekit.vocab import TFLITE_MICRO


def test_micro_equals_keras_and_litert_int8(tiny):
    r = make_runner(TFLITE_MICRO, tiny.tflite_int8, threads=4)
    assert r.runtime == TFLITE_MICRO and r.threads == 1  # TFLM has one thread
    p = r.predict(tiny.x)
    assert np.abs(p - tiny.ref).max() < 0.05
    assert np.abs(p - LiteRTRunner(tiny.tflite_int8).predict(tiny.x)).max() <= 2 / 256  # a quantization step or two
    lat = r.latency(tiny.x[:1], runs=3, warmup=1)
    assert lat["runs"] == 3 and lat["threads"] == 1


def test_arena_found_runs_and_a_smaller_one_fails(exported_all):
    model = (exported_all.out_dir / "micro/model_int8.tflite").read_bytes()
    arena = find_arena_size(model)
    sample = _zero_input(model)
    assert _runs(model, arena, sample)[0]
    ok, err = _runs(model, arena - 1, sample)
    assert not ok and "allocate" in err.lower()
    info = exported_all.outputs["micro"].info
    assert info["arena_bytes_min"] == arena and info["arena_bytes"] % 16 == 0 and info["arena_bytes"] >= arena
    # the seed CNN's largest activation pair (26x26x32 + 13x13x32 int8) must fit in it
    assert arena > 26 * 26 * 32


def test_micro_runner_matches_litert_int8(exported_all, digits):
    path = exported_all.out_dir / "micro/model_int8.tflite"
    x = digits.x_test[:25]
    a = MicroRunner(path).predict(x)
    b = LiteRTRunner(path).predict(x)
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.96
    assert np.abs(a - b).max() < 0.05  # same int8 graph; kernels differ by at most a few quantization steps
