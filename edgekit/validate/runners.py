"""Runners: one per runtime (Keras, LiteRT, onnxruntime, TFLite Micro), same interface.

Every runner takes float32 images in [0, 1] (N, H, W, C) and returns float32 class
probabilities; quantized models get their inputs quantized and their outputs dequantized
with the tensors' own scale and zero point. ``latency`` times batch-1 inference with the
input already in the model's own dtype (what an application keeps in its input buffer):
warm-up runs first, then ``runs`` timed runs, reported as p50/p90.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from edgekit.errors import InputError

# measured on the seed CNN on 2 cores (benchmarks/inference.py): one thread is as fast as two
# for LiteRT and onnxruntime at batch 1, with a far tighter p90 (no cross-core hand-off)
DEFAULT_THREADS = 1


def percentiles_ms(samples_s: list[float]) -> dict[str, float]:
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
    out: dict[str, Any] = percentiles_ms(times)
    out["samples_us"] = [t * 1e6 for t in times]
    return out


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)


class Runner(Protocol):
    runtime: str
    threads: int

    def predict(self, x: np.ndarray) -> np.ndarray: ...

    def latency(self, x1: np.ndarray, runs: int = 300, warmup: int = 20) -> dict[str, float]: ...


class KerasRunner:
    """The reference: a tf_keras model (batched predict; batch-1 latency eager or compiled)."""

    runtime = "keras"

    def __init__(self, model, eager: bool = False):
        self.model = model
        self.eager = eager
        self.threads = os.cpu_count() or 1

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(x, batch_size=256, verbose=0), dtype=np.float32)

    def latency(self, x1: np.ndarray, runs: int = 100, warmup: int = 10) -> dict[str, float]:
        from edgekit._lazy import tf

        t = tf().constant(x1)
        if self.eager:
            fn = lambda: self.model(t, training=False).numpy()  # noqa: E731
        else:
            f = tf().function(lambda v: self.model(v, training=False))
            fn = lambda: f(t).numpy()  # noqa: E731
        return time_calls(fn, runs, warmup)


class LiteRTRunner:
    """A .tflite model on LiteRT (``ai_edge_litert``) with its default XNNPACK delegate.

    Per call: ``set_tensor`` + ``invoke`` + ``get_tensor``. Measured on the seed CNN this is
    ~0.8 us faster than writing through the numpy views of ``tensor()`` (each view is
    rebuilt in Python per call) and within ~1.5 us of a bare ``invoke``.
    """

    runtime = "litert"

    def __init__(self, model: bytes | str | Path, threads: int | None = None, resolver: str = "auto"):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        data = Path(model).read_bytes() if isinstance(model, (str, Path)) else bytes(model)
        self.threads = int(threads or DEFAULT_THREADS)
        kinds = {"auto": OpResolverType.AUTO, "builtin": OpResolverType.BUILTIN,
                 "no-delegates": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES, "ref": OpResolverType.BUILTIN_REF}
        self.resolver = resolver
        from edgekit.export.micro import _quiet_fds

        try:
            with _quiet_fds():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                self.interp = Interpreter(model_content=data, num_threads=self.threads,
                                          experimental_op_resolver_type=kinds[resolver])
                self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise InputError(f"LiteRT cannot load the model: {str(e).strip().splitlines()[0][:200]}") from None
        self._data = data
        inp, out = self.interp.get_input_details()[0], self.interp.get_output_details()[0]
        self.in_index, self.out_index = inp["index"], out["index"]
        self.in_dtype, self.out_dtype = np.dtype(inp["dtype"]), np.dtype(out["dtype"])
        self.in_q, self.out_q = inp["quantization"], out["quantization"]
        self.in_shape = tuple(int(d) for d in inp["shape"])

    def to_input(self, x: np.ndarray) -> np.ndarray:
        if self.in_dtype.kind in "iu":
            scale, zp = self.in_q
            return quantize(x, scale, zp, self.in_dtype)
        return x.astype(self.in_dtype)

    def from_output(self, q: np.ndarray) -> np.ndarray:
        if self.out_dtype.kind in "iu":
            scale, zp = self.out_q
            return dequantize(q, scale, zp)
        return q.astype(np.float32)

    def _run_one(self, xq1: np.ndarray) -> np.ndarray:
        self.interp.set_tensor(self.in_index, xq1)
        self.interp.invoke()
        return self.interp.get_tensor(self.out_index)[0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        xq = np.ascontiguousarray(self.to_input(x).reshape((len(x), 1, *self.in_shape[1:])))
        out = np.stack([self._run_one(xq[i]) for i in range(len(x))])
        return self.from_output(out)

    def latency(self, x1: np.ndarray, runs: int = 300, warmup: int = 20) -> dict[str, float]:
        xq = np.ascontiguousarray(self.to_input(x1[:1]).reshape(self.in_shape))
        set_tensor, invoke, get_tensor = self.interp.set_tensor, self.interp.invoke, self.interp.get_tensor
        i, o = self.in_index, self.out_index

        def call() -> None:  # locals only: no attribute lookups inside the timed call
            set_tensor(i, xq)
            invoke()
            get_tensor(o)

        r = time_calls(call, runs, warmup)
        r["threads"] = self.threads
        return r


class OrtRunner:
    """An .onnx model on onnxruntime (CPU provider, all graph optimisations).

    Batch-1 latency runs through an IO binding with preallocated input/output OrtValues
    (measured ~3-5 us faster than ``run`` with a feed dict, which allocates per call).
    """

    runtime = "onnxruntime"

    def __init__(self, model: bytes | str | Path, threads: int | None = None):
        import onnxruntime as ort

        data = Path(model).read_bytes() if isinstance(model, (str, Path)) else bytes(model)
        so = ort.SessionOptions()
        self.threads = int(threads or DEFAULT_THREADS)
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        try:
            self.sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise InputError(f"onnxruntime cannot load the model: {str(e).strip().splitlines()[0][:200]}") from None
        self.in_name = self.sess.get_inputs()[0].name
        self.out_name = self.sess.get_outputs()[0].name

    def predict(self, x: np.ndarray) -> np.ndarray:
        outs = [self.sess.run([self.out_name], {self.in_name: x[i : i + 256].astype(np.float32)})[0]
                for i in range(0, len(x), 256)]
        return np.concatenate(outs).astype(np.float32)

    def latency(self, x1: np.ndarray, runs: int = 300, warmup: int = 20) -> dict[str, float]:
        import onnxruntime as ort

        x = np.ascontiguousarray(x1[:1], dtype=np.float32)
        out_shape = [1, *self.sess.run([self.out_name], {self.in_name: x})[0].shape[1:]]
        io = self.sess.io_binding()
        io.bind_ortvalue_input(self.in_name, ort.OrtValue.ortvalue_from_numpy(x))
        y = ort.OrtValue.ortvalue_from_shape_and_type(out_shape, np.float32)
        io.bind_ortvalue_output(self.out_name, y)
        run = self.sess.run_with_iobinding
        r = time_calls(lambda: run(io), runs, warmup)
        r["threads"] = self.threads
        return r


class MicroRunner:
    """A .tflite model on the TensorFlow Lite Micro interpreter (single thread, reference kernels)."""

    runtime = "tflite-micro"

    def __init__(self, model: bytes | str | Path, arena_size: int | None = None):
        from edgekit.export.flatbuffer import read_tflite
        from edgekit.export.micro import find_arena_size, micro_interpreter

        data = Path(model).read_bytes() if isinstance(model, (str, Path)) else bytes(model)
        g = read_tflite(data)
        self.threads = 1
        self.arena_size = arena_size or find_arena_size(data)
        self.interp = micro_interpreter(data, self.arena_size)
        t_in, t_out = g.input_tensors[0], g.output_tensors[0]
        self.in_dtype, self.out_dtype = np.dtype(t_in.dtype), np.dtype(t_out.dtype)
        self.in_q = (t_in.scale[0], t_in.zero_point[0]) if t_in.scale else None
        self.out_q = (t_out.scale[0], t_out.zero_point[0]) if t_out.scale else None
        self.in_shape = t_in.shape

    def _prep(self, x: np.ndarray) -> np.ndarray:
        if self.in_q and self.in_dtype.kind in "iu":
            return quantize(x, self.in_q[0], self.in_q[1], self.in_dtype)
        return x.astype(self.in_dtype)

    def _run_one(self, xq1: np.ndarray) -> np.ndarray:
        self.interp.set_input(xq1, 0)
        self.interp.invoke()
        return np.array(self.interp.get_output(0))[0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        xq = self._prep(x).reshape((len(x), *self.in_shape))
        out = np.stack([self._run_one(xq[i]) for i in range(len(x))])
        if self.out_q and self.out_dtype.kind in "iu":
            return dequantize(out, *self.out_q)
        return out.astype(np.float32)

    def latency(self, x1: np.ndarray, runs: int = 30, warmup: int = 2) -> dict[str, float]:
        xq = self._prep(x1[:1]).reshape(self.in_shape)
        r = time_calls(lambda: self._run_one(xq), runs, warmup)
        r["threads"] = 1
        return r


def make_runner(runtime: str, path: str | Path, threads: int | None = None) -> Runner:
    """The runner for ``runtime`` over the artifact at ``path``."""
    if runtime == "litert":
        return LiteRTRunner(path, threads)
    if runtime == "onnxruntime":
        return OrtRunner(path, threads)
    if runtime == "tflite-micro":
        return MicroRunner(path)
    raise InputError(f"No runner for runtime {runtime!r}. Expected one of: litert, onnxruntime, tflite-micro.")
