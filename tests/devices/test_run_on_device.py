"""run_on_device over the exec:// transport: a second interpreter is the device.

The happy paths run the real runner script under ``sys.executable`` (a separate process that
imports no edgekit) and compare with the same runtime in this process. The failure paths use
small wrapper "devices": no numpy, no LiteRT, Python 3.7, one that dies after the header, one
that answers garbage, one that hangs. Each must end in one InputError line, and the device's
temporary folder must be gone afterwards.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit.devices.run import DeviceResult, run_on_device
from edgekit.errors import InputError, UsageError

PY = sys.executable
try:  # the runners move to edgekit.runtimes; either location is the in-process reference
    from edgekit.runtimes import LiteRTRunner, OrtRunner  # type: ignore[attr-defined]
except ImportError:
    from edgekit.validate.runners import LiteRTRunner, OrtRunner


@pytest.fixture(scope="module")
def int8_tflite(tmp_path_factory) -> Path:
    """A tiny conv + dense tf_keras model as full-int8 .tflite (int8 input and output)."""
    from edgekit._lazy import keras
    from edgekit.export.convert import to_tflite

    k = keras()
    k.utils.set_random_seed(0)
    m = k.Sequential([k.Input((6, 6, 1)), k.layers.Conv2D(4, 3, activation="relu"), k.layers.Flatten(),
                      k.layers.Dense(5, activation="softmax")])
    x = np.random.default_rng(1).random((16, 6, 6, 1), dtype=np.float32)
    path = tmp_path_factory.mktemp("dev") / "tiny_int8.tflite"
    path.write_bytes(to_tflite(m, "int8", x, batch_size=1))
    return path


@pytest.fixture(scope="module")
def float_onnx(tmp_path_factory) -> Path:
    """A float .onnx: NHWC image -> flatten -> dense -> softmax, dynamic batch."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    w = numpy_helper.from_array(rng.normal(size=(36, 5)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(size=(5,)).astype(np.float32), "b")
    shape = numpy_helper.from_array(np.array([-1, 36], np.int64), "shape")
    nodes = [helper.make_node("Reshape", ["image", "shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "w"], ["mm"]), helper.make_node("Add", ["mm", "b"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probs"], axis=-1)]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 6, 6, 1])
    probs = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", 5])
    graph = helper.make_graph(nodes, "tiny", [image], [probs], [w, b, shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("dev") / "tiny.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture()
def images() -> np.ndarray:
    return np.random.default_rng(3).random((7, 6, 6, 1), dtype=np.float32)


def _device(tmp_path: Path, *prefix: str) -> str:
    """An exec:// URI whose temporary folders land in ``tmp_path/dev-tmp`` (to check cleanup)."""
    (tmp_path / "dev-tmp").mkdir(exist_ok=True)
    return "exec://" + " ".join(["env", f"TMPDIR={tmp_path / 'dev-tmp'}", *prefix])


def _left_behind(tmp_path: Path) -> list[str]:
    """The runner's temporary folders still there (onnxruntime itself may leave a '.ses' file)."""
    return sorted(p.name for p in (tmp_path / "dev-tmp").glob("edgekit-*"))


def test_int8_tflite_on_a_second_interpreter_matches_litert_here(int8_tflite, images, tmp_path):
    r = run_on_device(_device(tmp_path, PY), int8_tflite, images, "litert", runs=15, warmup=2, timeout_s=60)
    assert isinstance(r, DeviceResult) and r.outputs.shape == (7, 5) and r.outputs.dtype == np.float32
    ref = LiteRTRunner(int8_tflite, threads=1).predict(images)
    np.testing.assert_allclose(r.outputs, ref, atol=1e-6)  # same runtime, same quantization: same numbers
    assert np.allclose(r.outputs.sum(1), 1.0, atol=0.02) and len(set(r.outputs.argmax(1))) >= 1
    assert len(r.latencies_us) == 15 and min(r.latencies_us) > 0
    from edgekit.runtimes.base import percentiles

    lat = percentiles([t / 1e6 for t in r.latencies_us])
    assert lat["runs"] == 15 and 0 < lat["p50_ms"] <= lat["p90_ms"]
    f = r.facts
    assert f["runtime"] == "ai_edge_litert" and f["runtime_version"] and f["python"] == ".".join(
        map(str, sys.version_info[:3]))
    assert f["machine"] and f["cpu"]["arch"] == f["machine"].lower() and f["cpu"]["class"]
    assert _left_behind(tmp_path) == []


def test_float_onnx_on_a_second_interpreter_matches_onnxruntime_here(float_onnx, images, tmp_path):
    r = run_on_device(_device(tmp_path, PY), float_onnx, images, "onnxruntime", runs=10, warmup=1, timeout_s=60)
    ref = OrtRunner(float_onnx, threads=1).predict(images)
    np.testing.assert_allclose(r.outputs, ref, rtol=1e-5, atol=1e-6)
    assert r.outputs.shape == (7, 5) and len(r.latencies_us) == 10 and min(r.latencies_us) > 0
    assert r.facts["runtime"] == "onnxruntime" and _left_behind(tmp_path) == []


def _wrapper(tmp_path: Path, name: str, runner_branch: str) -> str:
    """A shell 'interpreter': the real Python for every command, ``runner_branch`` for the runner."""
    script = tmp_path / name
    script.write_text("#!/bin/sh\ncase \"$1\" in\n  *runner_script.py) " + runner_branch + " ;;\n"
                      f"  *) exec {PY} \"$@\" ;;\nesac\n")
    script.chmod(0o755)
    return str(script)


def _one_line_error(uri, artifact, images, runtime="litert", timeout_s=30.0) -> str:
    with pytest.raises(InputError) as e:
        run_on_device(uri, artifact, images, runtime, runs=3, warmup=0, timeout_s=timeout_s)
    msg = str(e.value)
    assert "\n" not in msg and "Traceback" not in msg and e.value.exit_code == 2
    return msg


def test_device_without_numpy(int8_tflite, images, tmp_path):
    """The system Python (no numpy, no LiteRT) -- or, where it has them, the venv's without site."""
    bare = "/usr/bin/python3"
    probe = shutil.which(bare) and __import__("subprocess").run(
        [bare, "-c", "import numpy"], capture_output=True, timeout=30).returncode != 0
    uri = _device(tmp_path, bare) if probe else _device(tmp_path, PY, "-S")
    msg = _one_line_error(uri, int8_tflite, images)
    assert "numpy cannot be imported" in msg and "pip install numpy" in msg and msg.endswith("(no-numpy).")
    assert _left_behind(tmp_path) == []


def test_device_with_numpy_but_without_litert(int8_tflite, images, tmp_path):
    import numpy

    site = tmp_path / "only-numpy"
    site.mkdir()
    pkg = Path(numpy.__file__).parent
    for p in pkg.parent.glob("numpy*"):  # numpy and its bundled libraries (numpy.libs)
        (site / p.name).symlink_to(p)
    msg = _one_line_error(_device(tmp_path, f"PYTHONPATH={site}", PY, "-S"), int8_tflite, images)
    assert "neither ai_edge_litert nor tflite_runtime can be imported" in msg
    assert "pip install ai-edge-litert" in msg and msg.endswith("(no-runtime).")
    assert _left_behind(tmp_path) == []


def test_python_older_than_3_8_is_refused(int8_tflite, images, tmp_path):
    old = tmp_path / "python3.7"
    old.write_text("#!/bin/sh\necho 3.7.3\n")
    old.chmod(0o755)
    msg = _one_line_error(f"exec://{old}", int8_tflite, images)
    assert msg == f"Device exec://{old}: Python 3.7.3 is too old; the on-device runner needs Python >= 3.8."


def test_device_that_dies_after_the_header(int8_tflite, images, tmp_path):
    uri = _device(tmp_path, _wrapper(tmp_path, "dies", f"{PY} \"$@\" | head -n 1; kill -9 $$"))
    msg = _one_line_error(uri, int8_tflite, images)
    assert "the runner stopped mid-answer (0 of 140 output bytes; exit code -9)" in msg
    assert _left_behind(tmp_path) == []


def test_device_that_dies_before_answering(int8_tflite, images, tmp_path):
    uri = _device(tmp_path, _wrapper(tmp_path, "crash", "echo 'Segmentation fault' >&2; kill -11 $$"))
    msg = _one_line_error(uri, int8_tflite, images)
    assert msg.endswith("the runner died before answering (killed by signal 11: Segmentation fault).")


@pytest.mark.parametrize("answer, ending", [
    ("echo 'Welcome to BusyBox v1.36'",
     "the runner's answer is not the edgekit protocol (got 'Welcome to BusyBox v1.36')."),
    ("echo 'EDGEKIT-RUNNER/2 {not json'", "the runner's answer header is damaged (not JSON)."),
    ("echo 'EDGEKIT-RUNNER/2 {\"status\": \"ok\"}'",
     "the runner's reply is not valid: field facts is missing; expected one of the protocol's fields status, facts, "
     "probe, latencies_us, outputs. The device does not run edgekit's runner, or it is faulty."),
])
def test_device_that_answers_garbage(int8_tflite, images, tmp_path, answer, ending):
    uri = _device(tmp_path, _wrapper(tmp_path, "garbage", answer))
    msg = _one_line_error(uri, int8_tflite, images)
    assert msg.endswith(ending)
    assert _left_behind(tmp_path) == []


def test_device_that_hangs_is_stopped_at_the_timeout(int8_tflite, images, tmp_path):
    uri = _device(tmp_path, _wrapper(tmp_path, "hangs", "exec sleep 60"))
    msg = _one_line_error(uri, int8_tflite, images, timeout_s=2)
    assert msg.endswith("the model run did not finish within 2s and was stopped; the device hangs or is too slow "
                        "(raise the timeout).")
    assert _left_behind(tmp_path) == []


def test_unreachable_and_wrong_arguments(int8_tflite, images, tmp_path):
    msg = _one_line_error("exec:///nonexistent/python3", int8_tflite, images)
    assert msg == "Device exec:///nonexistent/python3: cannot start '/nonexistent/python3' (not found); " \
                  "install it or fix the URI."
    with pytest.raises(UsageError, match="cannot run on a device. Expected one of: litert, onnxruntime"):
        run_on_device(f"exec://{PY}", int8_tflite, images, "tflite-micro")
    with pytest.raises(UsageError, match=r"NHWC batch of images. Received: shape \[6, 6, 1\]"):
        run_on_device(f"exec://{PY}", int8_tflite, images[0], "litert")
    with pytest.raises(InputError, match="does not exist"):
        run_on_device(f"exec://{PY}", tmp_path / "missing.tflite", images, "litert")


def test_a_model_the_device_runtime_cannot_load(images, tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 64)
    msg = _one_line_error(_device(tmp_path, PY), bad, images)
    assert "ai_edge_litert cannot load the model" in msg and msg.endswith("(load).")
    assert _left_behind(tmp_path) == []
