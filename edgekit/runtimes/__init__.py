"""Runtimes: what runs a model (Keras, LiteRT, onnxruntime, TFLite Micro), one module each.

``RUNTIMES`` maps the names of :mod:`edgekit.vocab` to :class:`~edgekit.runtimes.base.Runtime`
entries; :func:`make_runner` loads a model on one. The runtime libraries themselves are
imported only when a model is loaded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.registry import Registry
from edgekit.runtimes import keras, litert, ort, tflite_micro
from edgekit.runtimes.base import (DEFAULT_THREADS, Runner, Runtime, dequantize, percentiles, quantize,
                                   quiet_native_output, time_calls)
from edgekit.runtimes.isolated import IsolatedRunner
from edgekit.runtimes.keras import KerasRunner
from edgekit.runtimes.litert import LiteRTRunner
from edgekit.runtimes.ort import OrtRunner
from edgekit.runtimes.probe import probe_in_subprocess
from edgekit.runtimes.tflite_micro import MicroRunner, find_arena_size, micro_interpreter

RUNTIMES: Registry[Runtime] = Registry("runtime")
for _module in (keras, litert, ort, tflite_micro):
    RUNTIMES.add(_module.RUNTIME.name, _module.RUNTIME)


def get_runtime(name: str) -> Runtime:
    """The runtime called ``name`` (a UsageError with "did you mean" otherwise)."""
    return RUNTIMES.get(name)


def make_runner(runtime: str, path: Any, threads: int | None = None, *, trusted: bool = True,
                isolated: bool = False) -> Runner:
    """The runner for ``runtime`` over the model at ``path`` (or its bytes; Keras: a model object).

    ``trusted=False`` parses the file and loads and runs it once in a child process first.
    ``isolated``: the model runs in a child process for good (:class:`IsolatedRunner`), so a
    native crash in ``predict`` or ``latency`` is one InputError line (model files only).
    """
    rt = get_runtime(runtime)
    if isolated and rt.run_once is not None and isinstance(path, (str, Path)):
        if not trusted:
            rt.check(path)
        return IsolatedRunner(runtime, path, threads)
    return rt.load(path, threads, trusted=trusted)


__all__ = ["DEFAULT_THREADS", "RUNTIMES", "IsolatedRunner", "KerasRunner", "LiteRTRunner", "MicroRunner",
           "OrtRunner", "Runner", "Runtime", "dequantize", "find_arena_size", "get_runtime", "make_runner",
           "micro_interpreter", "percentiles", "probe_in_subprocess", "quantize", "quiet_native_output", "time_calls"]
