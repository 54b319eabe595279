"""A runner whose model runs in a child process: a native crash becomes one InputError line.

:class:`IsolatedRunner` has the Runner interface; its ``predict`` and ``latency`` are
requests to one child (:class:`~edgekit.runtimes.base.ChildWorker`) that loaded the model
with the runtime's own runner. Images and outputs travel as ``.npy`` files in a private
temporary folder (no pickle); replies are one JSON line. When the child dies (SIGSEGV,
abort) the call raises InputError naming the step, the model and the signal; a runtime
error comes back as a RuntimeError with the runtime's message, as in process. Used for
files edgekit did not write itself (``edgekit validate``); latency is timed in the child,
with the same code as in-process.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekit.errors import InputError
from edgekit.runtimes.base import ChildWorker, serve_lines

TIMEOUT_S = 600  # one request: a chunk of thousands of images on TFLM's reference kernels
CHUNK_BYTES = 64 << 20  # float32 images sent to the child per predict request (at least one image)
MAX_CHUNK = 4096  # images per predict request, at most
_CODE = "from edgekit.runtimes.isolated import serve; serve()"


def runner_command(runtime: str, path: str | Path, threads: int | None, arena: int | None) -> list[str]:
    """The child's argument list."""
    return [sys.executable, "-c", _CODE, runtime, str(path), str(threads or 0), str(arena or 0)]


def make_handler(argv: list[str]) -> Callable[[str], str]:
    """The child's request handler over the model named in ``argv`` (runtime, path, threads, arena)."""
    from edgekit.runtimes import get_runtime
    from edgekit.runtimes.tflite_micro import MicroRunner
    from edgekit.vocab import TFLITE_MICRO

    runtime, path, threads, arena = argv[0], Path(argv[1]), int(argv[2]) or None, int(argv[3]) or None
    runner = MicroRunner(path, arena) if runtime == TFLITE_MICRO else get_runtime(runtime).open(path, threads)

    def handle(line: str) -> str:
        req = json.loads(line)
        try:
            if req["op"] == "info":
                out: Any = {"threads": runner.threads, "arena_size": getattr(runner, "arena_size", None)}
            elif req["op"] == "predict":
                np.save(req["out"], runner.predict(np.load(req["x"], allow_pickle=False)), allow_pickle=False)
                out = {}
            else:
                x1 = np.load(req["x"], allow_pickle=False)
                out = {k: v for k, v in runner.latency(x1, runs=req["runs"], warmup=req["warmup"]).items()}
        except Exception as e:  # the runtime's own error types: one line back to the caller
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            return json.dumps({"error": " ".join(lines)[:240] if lines else type(e).__name__})
        return json.dumps({"ok": out})

    return handle


def serve(argv: list[str] | None = None) -> None:
    """The child: load the model, then answer requests until stdin closes."""
    serve_lines(make_handler(argv if argv is not None else sys.argv[1:]))


class IsolatedRunner:
    """The runner of ``runtime`` over the model file ``path``, in a child process."""

    def __init__(self, runtime: str, path: str | Path, threads: int | None = None):
        from edgekit.runtimes.tflite_micro import find_arena_size
        from edgekit.vocab import TFLITE_MICRO

        self.runtime, self.path = runtime, Path(path)
        arena = find_arena_size(self.path, name=repr(str(self.path))) if runtime == TFLITE_MICRO else None
        self._tmp = Path(tempfile.mkdtemp(prefix="edgekit-run-"))
        self._worker = ChildWorker(runner_command(runtime, self.path, threads, arena), TIMEOUT_S,
                                   f"{runtime} running {str(self.path)!r}")
        info = self._ask("loading", {"op": "info"})
        self.threads = int(info["threads"])
        if info.get("arena_size"):
            self.arena_size = int(info["arena_size"])

    def _ask(self, step: str, req: dict[str, Any]) -> dict[str, Any]:
        reply = self._worker.request(json.dumps(req))
        if reply is None:
            self.close()
            raise InputError(f"{step} {str(self.path)!r} on {self.runtime} crashed the runtime "
                             f"({self._worker.last_exit}); the file is damaged or not a model for it.")
        try:
            msg = json.loads(reply)
        except ValueError:
            msg = {"error": reply[:240]}
        if "error" in msg:  # the runtime's own error, raised as the in-process runner would
            raise RuntimeError(msg["error"])
        return msg["ok"]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Outputs on ``x`` (an array or Images, read a batch at a time): the child gets the images a
        chunk of at most :data:`CHUNK_BYTES` of float32 per request, so neither side holds the whole split."""
        from edgekit.data.store import iter_batches
        from edgekit.runtimes.base import PREDICT_BATCH

        per_image = 4 * int(np.prod(tuple(x.shape)[1:], dtype=np.int64))
        chunk = int(max(1, min(MAX_CHUNK, CHUNK_BYTES // max(per_image, 1))))
        outs, pending, held = [], [], 0
        for b in iter_batches(x, min(PREDICT_BATCH, chunk)):
            pending.append(b)
            held += len(b)
            if held >= chunk:
                outs.append(self._predict_chunk(np.concatenate(pending) if len(pending) > 1 else pending[0]))
                pending, held = [], 0
        if pending or not outs:
            outs.append(self._predict_chunk(np.concatenate(pending) if len(pending) > 1 else
                                            pending[0] if pending else np.zeros((0, *tuple(x.shape)[1:]), np.float32)))
        return outs[0] if len(outs) == 1 else np.concatenate(outs)

    def _predict_chunk(self, x: np.ndarray) -> np.ndarray:
        xp, out = self._tmp / "x.npy", self._tmp / "out.npy"
        np.save(xp, np.ascontiguousarray(x, dtype=np.float32), allow_pickle=False)
        self._ask(f"predicting {len(x)} images with", {"op": "predict", "x": str(xp), "out": str(out)})
        return np.load(out, allow_pickle=False)

    def latency(self, x1: np.ndarray, runs: int = 300, warmup: int = 20) -> dict[str, float]:
        xp = self._tmp / "x1.npy"
        np.save(xp, np.ascontiguousarray(x1[:1], dtype=np.float32), allow_pickle=False)
        return self._ask("timing", {"op": "latency", "x": str(xp), "runs": int(runs), "warmup": int(warmup)})

    def close(self) -> None:
        """End the child and remove the temporary folder."""
        self._worker.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing left to clean
            pass
