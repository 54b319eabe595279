"""IsolatedRunner: the model runs in a child process; same outputs as in-process, a crash is one line."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from edgekit.errors import InputError
from edgekit.runtimes import IsolatedRunner, isolated, make_runner
from edgekit.vocab import LITERT, ONNXRUNTIME, TFLITE_MICRO

# the real child, except that a predict request ends it with SIGSEGV
CRASH_ON_PREDICT = """
import os, signal, sys
from edgekit.runtimes import isolated
from edgekit.runtimes.base import serve_lines
handle = isolated.make_handler(sys.argv[1:])
def crash(line):
    if '"predict"' in line:
        os.kill(os.getpid(), signal.SIGSEGV)
    return handle(line)
serve_lines(crash)
"""


def crash_on_predict(runtime, path, threads, arena):
    return [sys.executable, "-c", CRASH_ON_PREDICT, runtime, str(path), str(threads or 0), str(arena or 0)]


@pytest.mark.parametrize("runtime, attr", [(LITERT, "tflite"), (ONNXRUNTIME, "onnx"), (TFLITE_MICRO, "tflite_int8")])
def test_isolated_runner_equals_the_in_process_one(tiny, runtime, attr):
    path = getattr(tiny, attr)
    r = make_runner(runtime, path, isolated=True)
    assert isinstance(r, IsolatedRunner) and r.threads == 1
    np.testing.assert_array_equal(r.predict(tiny.x), make_runner(runtime, path).predict(tiny.x))
    lat = r.latency(tiny.x[:1], runs=3, warmup=1)
    assert lat["runs"] == 3 and lat["p50_ms"] > 0
    if runtime == TFLITE_MICRO:
        assert r.arena_size == make_runner(runtime, path).arena_size
    r.close()


def test_a_child_killed_during_predict_is_one_line_naming_the_step_and_model(tiny, monkeypatch):
    monkeypatch.setattr(isolated, "runner_command", crash_on_predict)
    r = make_runner(LITERT, tiny.tflite, isolated=True)
    with pytest.raises(InputError) as e:
        r.predict(tiny.x)
    msg = str(e.value)
    assert "\n" not in msg and f"predicting {len(tiny.x)} images with {str(tiny.tflite)!r}" in msg
    assert "signal 11 (SIGSEGV)" in msg and LITERT in msg


def test_a_runtime_error_in_the_child_comes_back_as_the_runtimes_message(tiny):
    r = make_runner(ONNXRUNTIME, tiny.onnx, isolated=True)
    with pytest.raises(RuntimeError, match="image") as e:
        r.predict(np.zeros((2, 5, 5, 1), np.float32))  # wrong image size: onnxruntime refuses it
    assert not isinstance(e.value, InputError)
    assert r.predict(tiny.x).shape == (len(tiny.x), 3)  # the child is still there
    r.close()
