"""Checks that an untrusted artifact is what it claims before a native runtime loads it.

A pure-Python parse comes first (TFLite flatbuffer identifier and structure; ONNX protobuf
and ``onnx.checker``). Then the runtime load and one invocation happen in a child process,
so a file that would crash a native interpreter ends that child, not this process.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from edgekit.errors import InputError

_PROBE = r"""
import sys, numpy as np
runtime, path = sys.argv[1], sys.argv[2]
if runtime == "onnxruntime":
    import onnxruntime as ort
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    i = s.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in i.shape]
    s.run(None, {i.name: np.zeros(shape, np.float32)})
elif runtime == "tflite-micro":
    from tflite_micro.python.tflite_micro import runtime as rt
    it = rt.Interpreter.from_bytes(open(path, "rb").read(), arena_size=64 << 20)
    d = it.get_input_details(0)
    it.set_input(np.zeros(d["shape"], d["dtype"]), 0)
    it.invoke()
else:
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=path, num_threads=1)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    it.invoke()
    it.get_tensor(it.get_output_details()[0]["index"])
print("ok")
"""


def check_file(path: str | Path, runtime: str) -> None:
    """InputError with one clear line when ``path`` is not a loadable artifact for ``runtime``."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"Artifact {str(p)!r} does not exist.")
    if runtime in ("litert", "tflite-micro"):
        from edgekit.export.flatbuffer import read_tflite

        read_tflite(p)
    elif runtime == "onnxruntime":
        _check_onnx(p)


def _check_onnx(p: Path) -> None:
    import onnx

    try:
        proto = onnx.load(str(p))
        onnx.checker.check_model(proto)
    except Exception as e:
        msg = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise InputError(f"{str(p)!r} is not a valid ONNX model: {msg}") from None
    if not proto.graph.input or not proto.graph.output:
        raise InputError(f"{str(p)!r} is an ONNX model without graph inputs/outputs.")


def probe_in_subprocess(path: str | Path, runtime: str, timeout_s: int = 120) -> None:
    """Load and run ``path`` once in a child process; InputError when that fails or crashes."""
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, runtime, str(path)], capture_output=True,
                              text=True, errors="replace", timeout=timeout_s)  # runtimes echo raw names
    except subprocess.TimeoutExpired:
        raise InputError(f"Loading {str(path)!r} on {runtime} did not finish within {timeout_s}s.") from None
    if proc.returncode == 0 and proc.stdout.strip().endswith("ok"):
        return
    if proc.returncode < 0:
        raise InputError(f"{str(path)!r} crashes the {runtime} runtime (signal {-proc.returncode}); "
                         "the file is damaged or not a model for it.")
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    # "onnxruntime.capi.onnxruntime_pybind11_state.Fail: ..." -> "Fail: ..."
    last = re.sub(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*: )", "", lines[-1].strip())[:200] if lines \
        else f"exit code {proc.returncode}"
    raise InputError(f"{str(path)!r} cannot be run on {runtime}: {last}")


def safe_check(path: str | Path, runtime: str, probe: bool = True) -> None:
    """Both checks: a parse here, then (optionally) a load-and-run in a child process."""
    check_file(path, runtime)
    if probe:
        probe_in_subprocess(path, runtime)
