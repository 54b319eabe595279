"""TensorFlow Lite Micro: full-int8 .tflite models on the TFLM interpreter (host build).

The tensor arena size is measured, not guessed: the interpreter is built and run with
candidate arenas to find the smallest one (to :data:`ALIGN` bytes) with which it allocates
and invokes. The search starts from a lower bound read from the graph
(:func:`arena_lower_bound`), doubles up to a size that works and bisects between the two.
Every trial runs in ONE child process for the whole search (:func:`arena_worker`), because
TFLM segfaults on some too-small arenas ("Failed to allocate tail memory", then SIGSEGV):
a crash counts as "this size fails" and the next trial starts a fresh child. (Host
pointers are 64-bit, so the interpreter's own bookkeeping in the arena is a little larger
than on a 32-bit MCU: the measured arena is a safe upper bound there.)
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import numpy as np

from edgekit.errors import InputError
from edgekit.runtimes.base import (ChildWorker, ModelSource, Runtime, dequantize, predict_batches, quantize,
                                   quiet_native_output, read_model, serve_lines, time_calls)
from edgekit.runtimes.litert import verify
from edgekit.vocab import TFLITE_MICRO

MAX_ARENA = 64 * 1024 * 1024
ALIGN = 16  # TFLM aligns its arena allocations to 16 bytes: the search resolves sizes to this
TRIAL_TIMEOUT_S = 120
# per-tensor bookkeeping TFLM keeps in the arena's tail (TfLiteEvalTensor: data pointer, dims
# pointer, type: 24 bytes on a 64-bit host), per op (node + registration pointers) and per output
# channel of a quantized conv/depthwise/fully-connected op (int32 multiplier and shift)
_TAIL_PER_TENSOR, _TAIL_PER_OP, _TAIL_PER_CHANNEL = 24, 16, 8
_PER_CHANNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
ArenaTrial = Callable[[int], "tuple[bool, str]"]


def micro_interpreter(model: bytes, arena_size: int):
    """A TFLM interpreter over ``model`` with ``arena_size`` bytes (RuntimeError when it does not fit)."""
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(model, arena_size=int(arena_size))


def _runs(model: bytes, arena: int, sample: np.ndarray) -> tuple[bool, str]:
    """In this process: does ``model`` allocate and invoke with ``arena`` bytes? (May crash TFLM.)"""
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
    from edgekit.formats.tflite_flatbuffer import read_tflite

    t = read_tflite(model).input_tensors[0]
    zp = t.zero_point[0] if t.zero_point else 0
    return np.full(t.shape, zp, dtype=np.dtype(t.dtype))


def _align_up(n: int) -> int:
    return -(-int(n) // ALIGN) * ALIGN


def arena_lower_bound(model: ModelSource) -> int:
    """A size no smaller arena can hold ``model`` in, read from the graph (InputError when damaged).

    The largest sum of the non-constant tensors that are live at the same time around any op
    (produced at or before it, still read at or after it; graph inputs from the start, graph
    outputs to the end), each rounded up to :data:`ALIGN`, plus an estimate of the persistent
    bookkeeping in the arena's tail. An underestimate only costs search steps; the search
    checks it (a bound that already works is searched below).
    """
    from edgekit.formats.tflite_flatbuffer import read_tflite

    g = read_tflite(read_model(model))
    n_ops = len(g.ops)
    first = {t: -1 for t in g.inputs}  # graph inputs are live from the start
    last = {t: n_ops for t in g.outputs}  # graph outputs to the end
    for op in g.ops:
        for t in op.outputs:
            first.setdefault(t, op.index)
        for t in op.inputs + op.outputs:
            if t >= 0:
                last[t] = max(last.get(t, op.index), op.index)

    def nbytes(t: int) -> int:
        info = g.tensor(t)
        if info.is_constant or any(d < 0 for d in info.shape):
            return 0
        return _align_up(int(np.prod(info.shape, dtype=np.int64)) * _itemsize(info.dtype))

    live = [(first.get(t, 0), last.get(t, first.get(t, 0)), nbytes(t)) for t in set(first) | set(last)]
    peak = max((sum(b for s, e, b in live if s <= i <= e) for i in range(n_ops)), default=0)
    channels = sum(g.tensor(op.outputs[0]).shape[-1] for op in g.ops
                   if op.op in _PER_CHANNEL_OPS and op.outputs and g.tensor(op.outputs[0]).shape)
    tail = len(g.tensors) * _TAIL_PER_TENSOR + n_ops * _TAIL_PER_OP + channels * _TAIL_PER_CHANNEL
    return peak + tail


def _itemsize(dtype: str) -> int:
    try:
        return np.dtype(dtype).itemsize
    except TypeError:  # int4, string, resource ...: one byte is a lower bound
        return 1


def search_arena(trial: ArenaTrial, lower: int, limit: int = MAX_ARENA) -> int:
    """The smallest multiple of :data:`ALIGN` for which ``trial(size)`` is ``(True, "")``.

    Starts at ``lower`` (assumed to fail, checked at the end if it turns out to be the
    answer's neighbour), doubles to a size that works, then bisects. InputError when even
    ``limit`` fails.
    """
    lo, lo_tried = max(0, int(lower) // ALIGN * ALIGN), False  # largest size known (or assumed) to fail
    hi = _align_up(max(lo + ALIGN, lo * 5 // 4))
    while True:
        ok, err = trial(hi)
        if ok:
            break
        if hi >= limit:
            raise InputError(f"TFLite Micro cannot run this model even with a {limit:,}-byte arena: {err}")
        lo, lo_tried, hi = hi, True, min(hi * 2, limit)
    while True:
        while hi - lo > ALIGN:
            mid = lo + (hi - lo) // (2 * ALIGN) * ALIGN
            if trial(mid)[0]:
                hi = mid
            else:
                lo, lo_tried = mid, True
        if lo_tried or lo == 0 or not trial(lo)[0]:
            return hi
        hi, lo = lo, 0  # the bound itself works: it was no bound, search below it


_WORKER_CODE = "from edgekit.runtimes.tflite_micro import arena_worker; arena_worker()"


def arena_worker_command(path: str | Path) -> list[str]:
    """The argument list of the child that tries arena sizes for the model at ``path``."""
    return [sys.executable, "-c", _WORKER_CODE, str(path)]


def arena_worker(argv: list[str] | None = None) -> None:
    """The child: read the model named on the command line, then answer each line ``N`` with
    ``ok`` or ``fail <reason>`` after building and invoking the interpreter with N bytes."""
    path = (argv if argv is not None else sys.argv[1:])[0]
    model = Path(path).read_bytes()
    sample = _zero_input(model)

    def handle(line: str) -> str:
        ok, err = _runs(model, int(line), sample)
        return "ok" if ok else f"fail {err or 'does not fit'}"

    serve_lines(handle)


_FOUND: dict[str, int] = {}  # sha256 of a model -> its arena: export measures it, validation reuses it


def find_arena_size(model: ModelSource, *, command: Callable[[Path], list[str]] | None = None,
                    name: str | None = None) -> int:
    """The smallest tensor arena (bytes, to :data:`ALIGN`) with which TFLM allocates and runs ``model``.

    Trials run in one child process (``command(path)``, default :func:`arena_worker_command`;
    restarted after a crash). The result is remembered per model content for this process.
    InputError with one line when the file is damaged or no arena up to 64 MiB works.
    """
    import hashlib
    import tempfile

    what = name or (repr(str(model)) if isinstance(model, (str, Path)) else "the model")
    data = read_model(model)
    lower = arena_lower_bound(data)  # parses the file: a damaged one stops here, before any native code
    key = hashlib.sha256(data).hexdigest()
    if command is None and key in _FOUND:
        return _FOUND[key]
    with tempfile.TemporaryDirectory(prefix="edgekit-arena-") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(data)
        argv = (command or arena_worker_command)(path)
        with ChildWorker(argv, TRIAL_TIMEOUT_S, f"TFLite Micro arena search on {what}") as worker:
            def trial(size: int) -> tuple[bool, str]:
                reply = worker.request(str(size))
                if reply is None:
                    return False, f"the interpreter crashed ({worker.last_exit})"
                return reply == "ok", reply.removeprefix("fail ")

            try:
                arena = search_arena(trial, lower)
            except InputError as e:
                raise InputError(f"{what}: {e}") from None
    if command is None:
        _FOUND[key] = arena
    return arena


class MicroRunner:
    """A .tflite model on the TensorFlow Lite Micro interpreter (single thread, reference kernels)."""

    runtime = TFLITE_MICRO

    def __init__(self, model: ModelSource, arena_size: int | None = None):
        from edgekit.formats.tflite_flatbuffer import read_tflite

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
        """Outputs on ``x`` (an array or Images), one image per invoke, read a batch at a time."""
        return predict_batches(self._predict_batch, x)

    def _predict_batch(self, x: np.ndarray) -> np.ndarray:
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
