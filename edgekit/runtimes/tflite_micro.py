"""TensorFlow Lite Micro: full-int8 .tflite models on the TFLM interpreter (host build).

The tensor arena size is measured, not guessed: the interpreter is built and run with ever
smaller arenas (doubling, then bisection) to find the smallest one with which it allocates
and invokes. (Host pointers are 64-bit, so the interpreter's own bookkeeping in the arena
is a little larger than on a 32-bit MCU: the measured arena is a safe upper bound there.)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.errors import InputError
from edgekit.runtimes.base import (ModelSource, Runtime, dequantize, quantize, quiet_native_output, read_model,
                                   time_calls)
from edgekit.runtimes.litert import verify
from edgekit.vocab import TFLITE_MICRO

MAX_ARENA = 64 * 1024 * 1024


def micro_interpreter(model: bytes, arena_size: int):
    """A TFLM interpreter over ``model`` with ``arena_size`` bytes (RuntimeError when it does not fit)."""
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(model, arena_size=int(arena_size))


def _runs(model: bytes, arena: int, sample: np.ndarray) -> tuple[bool, str]:
    with quiet_native_output() as out:  # TFLM prints allocation failures
        try:
            it = micro_interpreter(model, arena)
            it.set_input(sample, 0)
            it.invoke()
            ok, err = True, ""
        except (RuntimeError, ValueError) as e:
            ok, err = False, str(e)
    lines = (out[0] if out else "").strip().splitlines()
    return ok, (err + (f" ({lines[-1].strip()})" if lines and not ok else "")).strip()


def _zero_input(model: bytes) -> np.ndarray:
    from edgekit.export.flatbuffer import read_tflite

    t = read_tflite(model).input_tensors[0]
    zp = t.zero_point[0] if t.zero_point else 0
    return np.full(t.shape, zp, dtype=np.dtype(t.dtype))


def find_arena_size(model: bytes) -> int:
    """The smallest tensor arena (bytes) with which TFLM allocates and runs ``model``."""
    sample = _zero_input(model)
    hi = 4096
    while True:
        ok, err = _runs(model, hi, sample)
        if ok:
            break
        if hi >= MAX_ARENA:
            raise InputError(f"TFLite Micro cannot run this model even with a {MAX_ARENA >> 20} MiB arena: {err}")
        hi *= 2
    lo = hi // 2 if hi > 4096 else 0  # largest known failure (0: assume 0 fails)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _runs(model, mid, sample)[0]:
            hi = mid
        else:
            lo = mid
    return hi


class MicroRunner:
    """A .tflite model on the TensorFlow Lite Micro interpreter (single thread, reference kernels)."""

    runtime = TFLITE_MICRO

    def __init__(self, model: ModelSource, arena_size: int | None = None):
        from edgekit.export.flatbuffer import read_tflite

        data = read_model(model)
        g = read_tflite(data)
        self.threads = 1
        self.arena_size = arena_size or find_arena_size(data)
        with quiet_native_output():
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


def _open(model: ModelSource, threads: int | None = None) -> MicroRunner:
    return MicroRunner(model)  # one thread: TFLM has no threads to set


def run_once(path: Path) -> None:
    """Load ``path`` with the largest arena and invoke it once on zeros (what the probe's child runs)."""
    it = micro_interpreter(Path(path).read_bytes(), MAX_ARENA)
    d = it.get_input_details(0)
    it.set_input(np.zeros(d["shape"], d["dtype"]), 0)
    it.invoke()


RUNTIME = Runtime(TFLITE_MICRO, "TensorFlow Lite Micro interpreter (reference kernels, one thread)", _open, verify,
                  run_once)
