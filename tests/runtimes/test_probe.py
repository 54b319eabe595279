"""The child-process probe: a good file passes, a runtime's error or crash comes back as one InputError line."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from edgekit.errors import InputError
from edgekit.runtimes import make_runner, probe
from edgekit.runtimes.child_env import child_env
from edgekit.runtimes.probe import probe_in_subprocess
from edgekit.vocab import KERAS, LITERT, ONNXRUNTIME, TFLITE_MICRO


def _stand_in(monkeypatch, code: str) -> None:
    """Run ``code`` as the child instead of the real probe."""
    monkeypatch.setattr(probe, "probe_command", lambda runtime, path: [sys.executable, "-c", code])


def test_good_files_pass_on_every_native_runtime(tiny):
    for runtime, path in ((LITERT, tiny.tflite), (ONNXRUNTIME, tiny.onnx), (TFLITE_MICRO, tiny.tflite_int8)):
        probe_in_subprocess(path, runtime)


def test_the_probe_is_a_module_with_an_argument_list(tiny):
    cmd = probe.probe_command(LITERT, tiny.tflite)
    assert cmd == [sys.executable, "-m", "edgekit.runtimes.probe", LITERT, str(tiny.tflite)]
    r = subprocess.run([sys.executable, "-m", "edgekit.runtimes.probe", KERAS, str(tiny.keras)],
                       capture_output=True, text=True, timeout=60, env=child_env())
    assert r.returncode == 2 and "no native load to probe" in r.stderr


def test_probe_reports_a_runtime_that_rejects_the_file(exported_all, tmp_path):
    probe_in_subprocess(exported_all.out_dir / "model_int8.tflite", "litert")  # a good file passes
    data = bytearray((exported_all.out_dir / "model_int8.tflite").read_bytes())
    rng = np.random.default_rng(0)
    for i in rng.integers(8, 600, 120):  # scramble the table region: offsets and vtables
        data[i] = rng.integers(0, 256)
    p = tmp_path / "scrambled.tflite"
    p.write_bytes(bytes(data))
    with pytest.raises(InputError) as e:
        probe_in_subprocess(p, "litert")
    assert "scrambled.tflite" in str(e.value) and "cannot be run on litert" in str(e.value)
    assert "\n" not in str(e.value)


def test_probe_turns_a_runtime_crash_into_one_line(tiny, monkeypatch):
    # stand-in for an interpreter that segfaults on a crafted file: the child dies by SIGSEGV
    _stand_in(monkeypatch, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    with pytest.raises(InputError, match=r"crashes the litert runtime \(signal 11\)"):
        probe_in_subprocess(tiny.tflite, "litert")
    with pytest.raises(InputError, match=r"crashes the litert runtime \(signal 11\)"):  # untrusted loads probe
        make_runner(LITERT, tiny.tflite, trusted=False)


def test_probe_output_that_is_not_utf8_is_one_line(tmp_path, monkeypatch):
    """Found by the CLI fuzzer: onnxruntime echoed a damaged node name's raw bytes to stderr,
    and decoding the child's output raised UnicodeDecodeError."""
    _stand_in(monkeypatch, "import sys; sys.stderr.buffer.write(b'Fail: node \\xdf\\xff bad\\n'); sys.exit(1)")
    with pytest.raises(InputError, match=r"cannot be run on onnxruntime: Fail: node \ufffd\ufffd bad") as e:
        probe_in_subprocess(tmp_path / "m.onnx", "onnxruntime")
    assert "\n" not in str(e.value)


def test_untrusted_load_checks_before_the_runtime_sees_the_file(tiny, tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"garbage" * 50)
    with pytest.raises(InputError, match="not a TFLite flatbuffer"):
        make_runner(LITERT, bad, trusted=False)
    with pytest.raises(InputError, match="does not exist"):
        make_runner(ONNXRUNTIME, tmp_path / "missing.onnx", trusted=False)
    r = make_runner(LITERT, tiny.tflite.read_bytes(), trusted=False)  # bytes: probed via a private file
    assert np.abs(r.predict(tiny.x) - tiny.ref).max() < 1e-5
