"""What every runtime shares: the Runner protocol, the Runtime registry entry, batch-1 timing,
percentiles, (de)quantization with a tensor's own parameters and the native-output silencer.

Every runner takes float32 images in [0, 1] (N, H, W, C) -- an array or a dataset split
(:class:`~edgekit.data.store.Images`), read a batch at a time (:func:`predict_batches`) -- and
returns float32 class probabilities; quantized models get their inputs quantized and their outputs dequantized
with the tensors' own scale and zero point. ``latency`` times batch-1 inference with the
input already in the model's own dtype (what an application keeps in its input buffer):
warm-up runs first, then ``runs`` timed runs, reported as p50/p90.
"""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import numpy as np

from edgekit.errors import InputError
from edgekit.runtimes.child_env import child_env

# measured on the reference CNN on 2 cores (benchmarks/inference.py): one thread is as fast as two
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


PREDICT_BATCH = 256  # images read and run per step of a runner's predict


def predict_batches(fn: Callable[[np.ndarray], Any], x: Any, batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """``fn``'s outputs on ``x`` (:class:`~edgekit.data.store.Images` or an array), computed a batch of
    ``batch_size`` float32 images at a time and concatenated in order: only one batch of images is in
    memory at once (the outputs, N x classes, are kept)."""
    from edgekit.data.store import iter_batches

    outs = [np.asarray(fn(b)) for b in iter_batches(x, batch_size)]
    if not outs:  # no images: what fn gives on an empty batch
        return np.asarray(fn(np.zeros((0, *tuple(x.shape)[1:]), np.float32)))
    return outs[0] if len(outs) == 1 else np.concatenate(outs)


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

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Outputs on ``x`` (an array or :class:`~edgekit.data.store.Images`), read a batch at a time."""
        ...

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


def describe_exit(returncode: int) -> str:
    """"signal 11 (SIGSEGV)" for a child ended by a signal, "exit code N" otherwise."""
    if returncode < 0:
        try:
            return f"signal {-returncode} ({signal.Signals(-returncode).name})"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


class ChildWorker:
    """A child process that answers one-line requests with one-line replies over stdin/stdout.

    Native code runs in the child, so a segfault or abort ends the child, not the caller:
    :meth:`request` then returns ``None`` (``last_exit`` says how it ended) and the next
    request starts a fresh child. Every reply has a deadline (``timeout_s``: the child is
    killed and InputError raised). Use as a context manager, or :meth:`close` it.
    """

    def __init__(self, argv: list[str], timeout_s: float, what: str):
        self.argv, self.timeout_s, self.what = list(argv), float(timeout_s), what
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.last_exit = ""

    def _start(self) -> subprocess.Popen:
        self.starts += 1
        # stderr is discarded: the child reports on its protocol line, native noise is not ours to show
        return subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=child_env())

    def request(self, line: str) -> str | None:
        """The child's reply to ``line`` (one line, no newline); ``None`` when the child died."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        proc = self.proc
        try:
            proc.stdin.write(line.encode() + b"\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            return self._died()
        fd, buf, deadline = proc.stdout.fileno(), b"", time.monotonic() + self.timeout_s  # type: ignore[union-attr]
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise InputError(f"{self.what} did not answer within {self.timeout_s:.0f}s.")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return self._died()
            buf += chunk
        return buf.decode(errors="replace").strip()

    def _died(self) -> None:
        assert self.proc is not None
        try:
            rc = self.proc.wait(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(timeout=self.timeout_s)
        self.last_exit = describe_exit(rc)
        self._close_pipes(self.proc)
        self.proc = None
        return None

    @staticmethod
    def _close_pipes(proc: subprocess.Popen) -> None:
        for pipe in (proc.stdin, proc.stdout):
            try:
                pipe.close()  # type: ignore[union-attr]
            except OSError:  # a broken pipe to a dead child
                pass

    def close(self) -> None:
        """End the child (its stdin closes; killed if it does not exit at once)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()  # type: ignore[union-attr]
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(timeout=5)
        finally:
            self._close_pipes(proc)

    def __enter__(self) -> "ChildWorker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_lines(handle: Callable[[str], str]) -> None:
    """The child side of :class:`ChildWorker`: answer each stdin line with ``handle(line)``.

    The protocol gets a private copy of fd 1, and fd 1 itself is pointed at stderr, so what
    native code prints can never be mistaken for a reply.
    """
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    for line in sys.stdin:
        reply.write(handle(line.strip()).replace("\n", " ") + "\n")
