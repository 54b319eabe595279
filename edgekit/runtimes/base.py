"""What every runtime shares: the Runner protocol, the Runtime registry entry, batch-1 timing,
percentiles, (de)quantization with a tensor's own parameters and the native-output silencer.

Every runner takes float32 images in [0, 1] (N, H, W, C) and returns float32 class
probabilities; quantized models get their inputs quantized and their outputs dequantized
with the tensors' own scale and zero point. ``latency`` times batch-1 inference with the
input already in the model's own dtype (what an application keeps in its input buffer):
warm-up runs first, then ``runs`` timed runs, reported as p50/p90.
"""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import numpy as np

from edgekit.errors import InputError

# measured on the seed CNN on 2 cores (benchmarks/inference.py): one thread is as fast as two
# for LiteRT and onnxruntime at batch 1, with a far tighter p90 (no cross-core hand-off)
DEFAULT_THREADS = 1

ModelSource = bytes | str | Path  # a model file's path or its bytes


def read_model(model: ModelSource) -> bytes:
    """The bytes of ``model`` (a path is read, bytes are returned as they are)."""
    return Path(model).read_bytes() if isinstance(model, (str, Path)) else bytes(model)


def percentiles(samples_s: list[float]) -> dict[str, float]:
    """p50/p90/mean in milliseconds (and the count) of a list of durations in seconds."""
    a = np.asarray(samples_s, dtype=np.float64) * 1e3
    return {"p50_ms": float(np.percentile(a, 50)), "p90_ms": float(np.percentile(a, 90)),
            "mean_ms": float(a.mean()), "runs": int(a.size)}


def time_calls(fn: Callable[[], Any], runs: int, warmup: int) -> dict[str, Any]:
    """Warm up, then time ``runs`` calls of ``fn`` one by one (``samples_us`` keeps every run)."""
    for _ in range(warmup):
        fn()
    clock = time.perf_counter
    times = []
    for _ in range(runs):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    out: dict[str, Any] = percentiles(times)
    out["samples_us"] = [t * 1e6 for t in times]
    return out


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)


@contextlib.contextmanager
def quiet_native_output() -> Iterator[list[str]]:
    """Silence what native code prints to fds 1 and 2 (TFLM allocation failures, the XNNPACK
    "INFO: Created ..." line, the converter's "fully_quantize: ..." lines).

    Yields a list that holds the captured text once the block ends. Errors are not lost:
    the runtimes raise them with their text. Without real fds (e.g. captured streams)
    nothing is silenced and the list stays empty.
    """
    captured: list[str] = []
    try:
        libc = ctypes.CDLL(None)
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
    except (OSError, ValueError, AttributeError):  # no real fds: nothing to silence
        yield captured
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield captured
        finally:
            libc.fflush(None)
            for fd, old in zip((1, 2), saved):
                os.dup2(old, fd)
                os.close(old)
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


class Runner(Protocol):
    """A loaded model on one runtime."""

    runtime: str
    threads: int

    def predict(self, x: np.ndarray) -> np.ndarray: ...

    def latency(self, x1: np.ndarray, runs: int = 300, warmup: int = 20) -> dict[str, float]: ...


@dataclasses.dataclass(frozen=True)
class Runtime:
    """A registry entry: how one runtime checks, probes and loads a model file.

    ``open(model, threads)``: the runner (trusted input). ``verify(path)``: a pure-Python
    parse of the file (InputError when it is not a model for this runtime). ``run_once(path)``:
    load and invoke once on zeros, raising the runtime's own errors; what the child process
    of :mod:`edgekit.runtimes.probe` runs (``None``: nothing native to isolate).
    """

    name: str
    description: str
    open: Callable[..., Runner]
    verify: Callable[[Path], None]
    run_once: Callable[[Path], None] | None = None

    def check(self, model: ModelSource, probe: bool = True) -> None:
        """InputError with one clear line when ``model`` is not a loadable model for this runtime:
        a parse here, then (``probe``) a load-and-run in a child process, so a file that would
        crash the native runtime ends that child, not this process."""
        if isinstance(model, (bytes, bytearray, memoryview)):  # probed through a private temporary file
            with tempfile.TemporaryDirectory(prefix="edgekit-check-") as d:
                p = Path(d) / "model"
                p.write_bytes(bytes(model))
                self.check(p, probe)
            return
        if not isinstance(model, (str, Path)):  # an object in memory (a Keras model): no file to check
            return
        p = Path(model)
        if not p.is_file():
            raise InputError(f"Artifact {str(p)!r} does not exist.")
        self.verify(p)
        if probe and self.run_once is not None:
            from edgekit.runtimes.probe import probe_in_subprocess

            probe_in_subprocess(p, self.name)

    def load(self, model: Any, threads: int | None = None, *, trusted: bool = True) -> Runner:
        """The runner over ``model``; an untrusted one goes through :meth:`check` first."""
        if not trusted:
            self.check(model)
        return self.open(model, threads)
