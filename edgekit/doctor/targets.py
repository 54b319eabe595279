"""Export-target probes on a tiny model (TFLite, LiteRT, ONNX, onnxruntime, Micro), edgetpu_compiler, C++."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np

from edgekit.doctor._common import Finding, _error, _guarded, _probe_model
from edgekit.doctor.requirements import _tf_keras_pin, installed_version, pinned
from edgekit.vocab import LITERT, ONNXRUNTIME

MAX_DIFF = 1e-4  # float targets vs the Keras model on the probe inputs


def check_targets() -> list[Finding]:
    """Each export target and runtime, on a 4-input Dense model: convert, run, compare with Keras."""
    x = np.linspace(0.0, 1.0, 8, dtype=np.float32).reshape(2, 4)
    try:
        model = _probe_model()
        ref = model(x, training=False).numpy()
    except Exception as e:  # noqa: BLE001 - reported as findings
        err = _error(e)
        return [Finding(n, "fail", f"the probe model cannot be built: {err}", f'pip install "{_tf_keras_pin()}"')
                for n in ("export tflite", "runtime litert", "export onnx", "runtime onnxruntime", "export micro")]
    out: list[Finding] = []
    tfl = _guarded(out, "export tflite", lambda: _tflite(model), f'pip install "{pinned("tensorflow")}"')
    _guarded(out, "runtime litert", lambda: _litert(tfl, x, ref), f'pip install "{pinned("ai-edge-litert")}"')
    onx = _guarded(out, "export onnx", lambda: _onnx(model),
                   f'pip install "{pinned("tf2onnx")}" "{pinned("onnx")}"')
    _guarded(out, "runtime onnxruntime", lambda: _ort(onx, x, ref), f'pip install "{pinned("onnxruntime")}"')
    _guarded(out, "export micro", lambda: _micro(tfl, x, ref), f'pip install "{pinned("tflite-micro")}"')
    out.append(check_cxx())
    out.append(check_edgetpu_compiler())
    return out


def check_edgetpu_compiler() -> Finding:
    """``edgetpu_compiler`` on PATH (optional: edgekit analyses Edge TPU op support itself)."""
    from edgekit.export.edgetpu import compiler_path

    path = compiler_path()
    if path is None:
        return Finding(
            "export edgetpu", "warn",
            "edgetpu_compiler not on PATH: the edgetpu target exports the int8 model and edgekit's op-by-op "
            "analysis, not *_edgetpu.tflite",
            "install the Edge TPU compiler (Debian/Ubuntu x86-64 only): add the coral-edgetpu-stable apt "
            "repository from https://coral.ai/docs/edgetpu/compiler/ and apt-get install edgetpu-compiler; "
            "edgekit still checks Edge TPU requirements itself")
    try:
        r = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
        ver = (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr).strip() else "version unknown"
    except (OSError, subprocess.TimeoutExpired) as e:
        return Finding("export edgetpu", "fail", f"{path} does not run: {_error(e)}",
                       "reinstall the Edge TPU compiler (apt-get install --reinstall edgetpu-compiler)")
    from edgekit.export.edgetpu_ops import COMPILER_VERSION

    m = re.search(r"version\s+(\d+)\.", ver)
    if m and m.group(1) != COMPILER_VERSION.split(".")[0]:
        return Finding("export edgetpu", "warn", f"{path} ({ver}); edgekit's operator-version table describes "
                       f"compiler {COMPILER_VERSION}, so its analysis may differ from this compiler's verdict",
                       "compare the analysis with this compiler's log (edgetpu/compiler.txt)")
    return Finding("export edgetpu", "ok", f"{path} ({ver})")


def check_cxx() -> Finding:
    """A host C++ compiler (optional: only to build the micro target's C source on this machine)."""
    for cxx in ("g++", "c++", "clang++"):
        path = shutil.which(cxx)
        if path:
            return Finding("c++ compiler", "ok", f"{path} (can build the micro target's model_data.cc here)")
    return Finding("c++ compiler", "warn",
                   "no g++/c++/clang++ on PATH: the micro target still exports; its C source is built by "
                   "your firmware toolchain",
                   "optional: apt-get install g++ to compile model_data.cc on this host")


# --------------------------------------------------------------------------- probes

def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32))))


def _compared(name: str, what: str, got: np.ndarray, ref: np.ndarray, fix: str) -> Finding:
    d = _diff(got, ref)
    if got.shape != ref.shape or not d <= MAX_DIFF:
        return Finding(name, "fail", f"{what} disagrees with Keras: shape {got.shape}, max |diff| {d:.3g}", fix)
    return Finding(name, "ok", f"{what}: max |diff| vs Keras {d:.1g}")


def _tflite(model) -> tuple[Finding, bytes]:
    from edgekit.export.convert import to_tflite

    data = to_tflite(model, "float32", batch_size=1)
    return Finding("export tflite", "ok", f"TFLite converter: {len(data)} bytes (tflite, -fp16, -dynamic, -int8)"), data


def _litert(tfl: bytes | None, x: np.ndarray, ref: np.ndarray) -> Finding:
    from edgekit.runtimes import make_runner

    if tfl is None:
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401

        return Finding("runtime litert", "ok", "ai_edge_litert imports (not run: no TFLite model)")
    return _compared("runtime litert", f"LiteRT {installed_version('ai-edge-litert')} runs the model",
                     make_runner(LITERT, tfl).predict(x), ref, f'pip install "{pinned("ai-edge-litert")}"')


def _onnx(model) -> tuple[Finding, bytes]:
    from edgekit.export.onnx import keras_to_onnx

    proto = keras_to_onnx(model, (4,))
    import onnxruntime.quantization  # noqa: F401 - what onnx-int8 needs

    data = proto.SerializeToString()
    return Finding("export onnx", "ok", f"tf2onnx {installed_version('tf2onnx')} + onnx checker: {len(data)} bytes "
                                        "(onnx, onnx-int8)"), data


def _ort(onx: bytes | None, x: np.ndarray, ref: np.ndarray) -> Finding:
    from edgekit.runtimes import make_runner

    if onx is None:
        import onnxruntime  # noqa: F401

        return Finding("runtime onnxruntime", "ok", "onnxruntime imports (not run: no ONNX model)")
    return _compared("runtime onnxruntime", f"onnxruntime {installed_version('onnxruntime')} runs the model",
                     make_runner(ONNXRUNTIME, onx).predict(x), ref, f'pip install "{pinned("onnxruntime")}"')


def _micro(tfl: bytes | None, x: np.ndarray, ref: np.ndarray) -> Finding:
    from edgekit.runtimes.base import quiet_native_output
    from edgekit.runtimes.tflite_micro import MicroRunner

    if tfl is None:
        from tflite_micro.python.tflite_micro import runtime  # noqa: F401

        return Finding("export micro", "ok", "tflite_micro imports (not run: no TFLite model)")
    with quiet_native_output():  # TFLM prints what fails in its invoke too
        got = MicroRunner(tfl, arena_size=16 * 1024).predict(x)  # a fixed arena: no arena search for a probe
    return _compared("export micro", "TFLite Micro runs the model", got, ref, f'pip install "{pinned("tflite-micro")}"')
