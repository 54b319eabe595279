"""``edgekit doctor``: versions of the stack, the combinations known to break, what runs here.

Each check returns :class:`Finding` s (``ok``, ``warn`` or ``fail``, with the fix). ``fail``
means edgekit will not work as installed; ``warn`` marks something optional or slow.
The version table reads package metadata only; the Keras, tfmot and export-target checks
import TensorFlow and run a 4-input Dense model through each converter and runtime
(a few seconds in all).
"""
from __future__ import annotations

import dataclasses
import importlib
import os
import platform
import shutil
import subprocess
import time
import warnings
from importlib import metadata
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

STATUSES = ("ok", "warn", "fail")

# distribution names shown in the version table, in this order (after python)
VERSION_PACKAGES = (
    "edgekit", "tensorflow", "tf-keras", "keras", "tensorflow-model-optimization", "tf2onnx", "onnx",
    "onnxruntime", "ai-edge-litert", "tflite-micro", "numpy", "protobuf", "ml-dtypes",
)
# packages whose declared requirements are checked
REQUIRING_PACKAGES = (
    "edgekit", "tensorflow", "tf-keras", "tensorflow-model-optimization", "tf2onnx", "onnx", "onnxruntime",
    "ai-edge-litert", "tflite-micro",
)
# an unmet requirement on one of these (or any of edgekit's own) is a failure; on others a warning
KEY_PACKAGES = frozenset(VERSION_PACKAGES[1:] + ("flatbuffers", "h5py"))
REQUIRES_PYTHON = ">=3.10,<3.13"  # used when edgekit's own metadata is missing (source tree)
MAX_DIFF = 1e-4  # float targets vs the Keras model on the probe inputs

# /proc/cpuinfo flags that decide int8 inference speed
INT8_FEATURES: dict[str, str] = {
    "avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512", "avx512_vnni": "AVX-512 VNNI", "avx_vnni": "AVX-VNNI",
    "amx_int8": "AMX-INT8", "asimd": "NEON", "asimddp": "dot product", "i8mm": "I8MM",
}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One check's result: ``status`` is ``ok``, ``warn`` or ``fail``; ``fix`` says what to do."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- versions

def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Python and the stack's versions from package metadata (None: not installed); imports nothing heavy."""
    return {"python": platform.python_version(), **{n: installed_version(n) for n in VERSION_PACKAGES}}


def pinned(name: str) -> str:
    """``name`` with edgekit's own specifier (``tensorflow==2.21.0``), for pip commands."""
    try:
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name
    except ImportError:
        return name
    for r in _requires("edgekit") or []:
        req = Requirement(r)
        if canonicalize_name(req.name) == canonicalize_name(name) and not req.marker:
            return f"{req.name}{req.specifier}"
    return name


# --------------------------------------------------------------------------- requirements

def applicable(requirements: Iterable[str]) -> list[Any]:
    """The ``packaging`` Requirements whose markers hold here (no extras)."""
    from packaging.requirements import Requirement

    reqs = [Requirement(text) for text in requirements]
    return [r for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


def unmet_requirements(
    requirements: Iterable[str], installed: Mapping[str, str | None] | None = None,
) -> list[tuple[str, str, str | None]]:
    """``(name, specifier, installed version or None)`` of each requirement that is not met.

    Markers are evaluated for this interpreter with no extras. ``installed`` maps
    distribution names to versions (missing: not installed); None reads the metadata.
    """
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion

    table = None if installed is None else {canonicalize_name(k): v for k, v in installed.items()}
    out = []
    for req in applicable(requirements):
        have = installed_version(req.name) if table is None else table.get(canonicalize_name(req.name))
        try:
            ok = have is not None and req.specifier.contains(have, prereleases=True)
        except InvalidVersion:  # a non-PEP 440 version: nothing to compare
            ok = True
        if not ok:
            out.append((req.name, str(req.specifier), have))
    return out


def check_requirements(
    package: str, requirements: Sequence[str] | None = None, installed: Mapping[str, str | None] | None = None,
) -> Finding:
    """Whether the installed versions satisfy what ``package`` declares (and its Requires-Python).

    ``requirements``/``installed`` default to this environment's metadata (tests pass fakes).
    An unmet requirement of edgekit's own or on a :data:`KEY_PACKAGES` package fails; others warn.
    """
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name

    name = f"deps {package}"
    problems: list[str] = []
    specs: list[str] = []
    other_fix = ""
    severity = "warn"
    if requirements is None:
        requirements = _requires(package)
        if requirements is None:
            return _not_installed(package, name)
        needs_py = metadata.metadata(package).get("Requires-Python")
        if needs_py and not SpecifierSet(needs_py).contains(platform.python_version(), prereleases=True):
            problems.append(f"needs Python {needs_py}, running {platform.python_version()}")
            other_fix = f"use a Python {needs_py} environment"
            severity = "fail"
    for req_name, spec, have in unmet_requirements(requirements, installed):
        problems.append(f"needs {req_name}{spec}, " + (f"installed {have}" if have else "not installed"))
        specs.append(f'"{req_name}{spec}"')
        if package == "edgekit" or canonicalize_name(req_name) in KEY_PACKAGES:
            severity = "fail"
    if problems:
        fix = "; ".join(f for f in (other_fix, "pip install " + " ".join(specs) if specs else "") if f)
        return Finding(name, severity, f"{package}: " + "; ".join(problems), fix)
    n = len(applicable(requirements))
    return Finding(name, "ok", f"{n} requirement{'s' if n != 1 else ''} met")


def check_python() -> Finding:
    """The interpreter fits edgekit's Requires-Python."""
    from packaging.specifiers import SpecifierSet

    try:
        needs = metadata.metadata("edgekit").get("Requires-Python") or REQUIRES_PYTHON
    except metadata.PackageNotFoundError:
        needs = REQUIRES_PYTHON
    have = platform.python_version()
    if SpecifierSet(needs).contains(have, prereleases=True):
        return Finding("python", "ok", f"{have} (edgekit needs {needs})")
    return Finding("python", "fail", f"Python {have}; edgekit and TensorFlow's wheels need {needs}",
                   f"create the environment with a Python {needs} (e.g. python3.11 -m venv .venv)")


# --------------------------------------------------------------------------- Keras

def check_tf_keras() -> Finding:
    """tf_keras (Keras 2) is installed and imports: tfmot does not support Keras 3."""
    name, have, k3 = "tf_keras", installed_version("tf-keras"), installed_version("keras")
    fix = f'pip install "{_tf_keras_pin()}"'
    if have is None:
        what = f"Keras {k3} without tf_keras" if k3 else "tf_keras is not installed"
        return Finding(name, "fail", f"{what}: tensorflow-model-optimization and edgekit need Keras 2 (tf_keras)", fix)
    if not have.startswith("2."):
        return Finding(name, "fail", f"tf_keras {have} is not Keras 2", fix)
    from edgekit._lazy import keras

    tf_keras = keras()  # imports TensorFlow (start-up noise captured)
    extra = f"; Keras {k3} is installed too (unused by edgekit)" if k3 else ""
    return Finding(name, "ok", f"tf_keras {tf_keras.__version__} imports{extra}")


def check_legacy_keras() -> Finding:
    """``TF_USE_LEGACY_KERAS=1`` is in force: ``tf.keras`` and ``import tensorflow.keras`` give tf_keras.

    TensorFlow picks the Keras behind ``import tensorflow.keras`` when it is imported and the
    one behind ``tf.keras`` on its first use: importing TensorFlow before edgekit (which sets
    the variable) silently gives Keras 3 there.
    """
    name = "legacy keras"
    fix = ("import edgekit (or set os.environ['TF_USE_LEGACY_KERAS'] = '1') before TensorFlow is imported, "
           "or export TF_USE_LEGACY_KERAS=1 before Python starts")
    env = os.environ.get("TF_USE_LEGACY_KERAS")
    from edgekit._lazy import tf

    tf_ = tf()
    import tf_keras

    wrong = []
    if tf_.keras.Model is not tf_keras.Model:
        wrong.append(f"tf.keras is {_keras_of(tf_.keras.Model)}")
    mod = importlib.import_module("tensorflow.keras")
    if getattr(mod, "Model", None) is not tf_keras.Model:
        wrong.append(f"`from tensorflow.keras import ...` gives {_keras_of(getattr(mod, 'Model', None))}")
    if wrong:
        cause = ("TF_USE_LEGACY_KERAS is " + (f"{env!r}" if env is not None else "unset")
                 if env not in ("1", "true", "True")
                 else "TensorFlow was imported (or tf.keras used) before TF_USE_LEGACY_KERAS=1 was set")
        return Finding(name, "fail", f"{'; '.join(wrong)}, not tf_keras: {cause}", fix)
    return Finding(name, "ok", f"TF_USE_LEGACY_KERAS={env}: tf.keras and tensorflow.keras are tf_keras "
                               f"{tf_keras.__version__}")


def check_tfmot() -> Finding:
    """tfmot imports and wraps a tf_keras model for pruning and quantization-aware training."""
    from edgekit._lazy import keras

    k = keras()
    import tensorflow_model_optimization as tfmot

    model = _probe_model()
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model)
    qat = tfmot.quantization.keras.quantize_model(_probe_model())
    if not isinstance(pruned, k.Model) or not isinstance(qat, k.Model):
        return Finding("tfmot", "fail", "tfmot returned a model that is not a tf_keras model",
                       f'pip install "{pinned("tensorflow-model-optimization")}" "{_tf_keras_pin()}"')
    return Finding("tfmot", "ok", f"tfmot {tfmot.__version__}: prune_low_magnitude and quantize_model "
                                  "work on a tf_keras model")


# --------------------------------------------------------------------------- export targets

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


# --------------------------------------------------------------------------- CPU

def check_cpu(cpuinfo: str | None = None, machine: str | None = None) -> Finding:
    """The CPU features that decide int8 inference speed (XNNPACK / onnxruntime kernels)."""
    from edgekit.train.devices import cpu_flags, cpu_model

    flags, arch = cpu_flags(cpuinfo), (machine or platform.machine()).lower()
    model = cpu_model(cpuinfo)
    have = [label for f, label in INT8_FEATURES.items() if f in flags]
    listed = ", ".join(have) or "none of " + ", ".join(INT8_FEATURES.values())
    slow_fix = ("nothing to install: measure int8 latency on the deployment device or an AVX2/VNNI (x86) or "
                "dot-product (Arm) CPU; numbers from this machine understate int8 speed")
    if not flags:
        return Finding("cpu int8", "warn", f"{model}: CPU flags unreadable (/proc/cpuinfo); int8 speed unknown",
                       "none: edgekit reads CPU flags on Linux only")
    if arch in ("x86_64", "amd64", "i686", "i386") or "sse2" in flags or "avx" in flags:
        if "avx2" not in flags:
            return Finding("cpu int8", "warn", f"{model}: no AVX2 ({listed}): int8 kernels fall back to SSE "
                                               "and run slowly", slow_fix)
        dot = next((INT8_FEATURES[f] for f in ("amx_int8", "avx512_vnni", "avx_vnni") if f in flags), None)
        why = f"{dot}: int8 dot products in hardware" if dot else "int8 runs on AVX2 kernels (no VNNI)"
        return Finding("cpu int8", "ok", f"{model}: {listed}; {why}")
    if "asimddp" not in flags and "i8mm" not in flags:
        return Finding("cpu int8", "warn", f"{model}: no Arm dot product ({listed}): int8 uses plain NEON, slower",
                       slow_fix)
    return Finding("cpu int8", "ok", f"{model}: {listed}; int8 dot products in hardware")


# --------------------------------------------------------------------------- all

def run_checks(progress: Callable[[str], None] | None = None) -> list[Finding]:
    """Every check, in order; a check that raises becomes a ``fail`` naming the error."""
    out: list[Finding] = []
    steps: list[tuple[str, Callable[[], Any], str]] = [
        ("python", check_python, ""),
        *((f"deps {p}", (lambda p=p: check_requirements(p)), "pip install packaging") for p in REQUIRING_PACKAGES),
        ("tf_keras", check_tf_keras, f'pip install "{_tf_keras_pin()}"'),
        ("legacy keras", check_legacy_keras, f'pip install "{_tf_keras_pin()}"'),
        ("tfmot", check_tfmot, f'pip install "{pinned("tensorflow-model-optimization")}" "{_tf_keras_pin()}"'),
        ("export targets", check_targets, ""),
        ("cpu int8", check_cpu, ""),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fn, fix in steps:
            if progress:
                progress(f"checking {name}")
            _guarded(out, name, fn, fix)
    return out


def report(progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``{"versions", "checks", "ok", "seconds"}``: what ``edgekit doctor --json`` prints."""
    t0 = time.perf_counter()
    found = run_checks(progress)
    return {"versions": versions(), "checks": [f.to_dict() for f in found],
            "ok": not any(f.status == "fail" for f in found), "seconds": round(time.perf_counter() - t0, 2)}


# --------------------------------------------------------------------------- helpers

def _guarded(out: list[Finding], name: str, fn: Callable[[], Any], fix: str) -> Any:
    """Run ``fn``; append its Finding(s) (or a fail naming the error) to ``out``; return its value."""
    try:
        r = fn()
    except Exception as e:  # noqa: BLE001 - a broken install is what doctor reports
        out.append(Finding(name, "fail", _error(e), fix or "reinstall edgekit's stack: pip install -e ."))
        return None
    if isinstance(r, Finding):
        out.append(r)
    elif isinstance(r, list) and all(isinstance(f, Finding) for f in r):
        out.extend(r)
    elif isinstance(r, tuple) and r and isinstance(r[0], Finding):
        out.append(r[0])
        return r[1]
    return r


def _error(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:240]}" if text else type(e).__name__


def _requires(package: str) -> list[str] | None:
    try:
        return list(metadata.requires(package) or [])
    except metadata.PackageNotFoundError:
        return None


def _not_installed(package: str, name: str) -> Finding:
    if package == "edgekit":
        return Finding(name, "warn", "edgekit is not installed (running from a source tree?): its pins are unchecked",
                       "pip install -e .")
    return Finding(name, "fail", f"{package} is not installed", f'pip install "{pinned(package)}"')


def _tf_keras_pin() -> str:
    tfv = installed_version("tensorflow")
    if tfv and tfv.count(".") >= 1:
        major, minor = tfv.split(".")[:2]
        return f"tf-keras=={major}.{minor}.*"
    return pinned("tf-keras")


def _keras_of(cls: Any) -> str:
    mod = getattr(cls, "__module__", "") or ""
    top = mod.split(".")[0]
    if top == "keras":
        return f"Keras {installed_version('keras')}"
    return f"{top or 'nothing'}"


def _probe_model():
    """A fixed 4 -> 3 softmax Dense model (deterministic weights)."""
    from edgekit._lazy import keras

    k = keras()
    model = k.Sequential([k.Input((4,)), k.layers.Dense(3, activation="softmax")])
    model.set_weights([np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(4, 3),
                       np.array([0.1, 0.0, -0.1], np.float32)])
    return model


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
    from edgekit.validate.runners import LiteRTRunner

    if tfl is None:
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401

        return Finding("runtime litert", "ok", "ai_edge_litert imports (not run: no TFLite model)")
    return _compared("runtime litert", f"LiteRT {installed_version('ai-edge-litert')} runs the model",
                     LiteRTRunner(tfl).predict(x), ref, f'pip install "{pinned("ai-edge-litert")}"')


def _onnx(model) -> tuple[Finding, bytes]:
    from edgekit.export.onnx import keras_to_onnx

    proto = keras_to_onnx(model, (4,))
    import onnxruntime.quantization  # noqa: F401 - what onnx-int8 needs

    data = proto.SerializeToString()
    return Finding("export onnx", "ok", f"tf2onnx {installed_version('tf2onnx')} + onnx checker: {len(data)} bytes "
                                        "(onnx, onnx-int8)"), data


def _ort(onx: bytes | None, x: np.ndarray, ref: np.ndarray) -> Finding:
    from edgekit.validate.runners import OrtRunner

    if onx is None:
        import onnxruntime  # noqa: F401

        return Finding("runtime onnxruntime", "ok", "onnxruntime imports (not run: no ONNX model)")
    return _compared("runtime onnxruntime", f"onnxruntime {installed_version('onnxruntime')} runs the model",
                     OrtRunner(onx).predict(x), ref, f'pip install "{pinned("onnxruntime")}"')


def _micro(tfl: bytes | None, x: np.ndarray, ref: np.ndarray) -> Finding:
    from edgekit.export.micro import _quiet_fds
    from edgekit.validate.runners import MicroRunner

    if tfl is None:
        from tflite_micro.python.tflite_micro import runtime  # noqa: F401

        return Finding("export micro", "ok", "tflite_micro imports (not run: no TFLite model)")
    with _quiet_fds():
        got = MicroRunner(tfl, arena_size=16 * 1024).predict(x)
    return _compared("export micro", "TFLite Micro runs the model", got, ref, f'pip install "{pinned("tflite-micro")}"')
