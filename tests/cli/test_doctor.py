"""`edgekit doctor`: versions, known-broken combinations, export targets, CPU int8 features."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata

import pytest
from click.testing import CliRunner

from edgekit.cli.main import cli
from edgekit.doctor import Finding, check_cpu, check_edgetpu_compiler, check_requirements, unmet_requirements

REQUIRED = (
    "python", "deps edgekit", "deps tensorflow", "deps tf-keras", "deps tensorflow-model-optimization",
    "deps tf2onnx", "deps onnx", "deps onnxruntime", "deps ai-edge-litert", "deps tflite-micro", "tf_keras",
    "legacy keras", "tfmot", "export tflite", "runtime litert", "export onnx", "runtime onnxruntime", "export micro",
)
OPTIONAL = ("c++ compiler", "export edgetpu", "cpu int8")


@pytest.fixture(scope="module")
def doctor_json() -> dict:
    r = CliRunner().invoke(cli, ["doctor", "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _doctor_in_subprocess(prelude: str) -> subprocess.CompletedProcess:
    """``edgekit doctor --json`` in a fresh interpreter after ``prelude``, without the legacy-Keras switch."""
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    code = f"{prelude}\nfrom edgekit.cli.main import cli\ncli(['doctor', '--json'], prog_name='edgekit')"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)


def test_doctor_help():
    r = CliRunner().invoke(cli, ["doctor", "--help"])
    assert r.exit_code == 0, r.output
    assert "--json" in r.output and "Exits 1" in r.output


def test_doctor_passes_on_this_machine(doctor_json):
    assert set(doctor_json) == {"versions", "checks", "ok", "seconds"}
    assert doctor_json["ok"] is True
    status = {c["name"]: c["status"] for c in doctor_json["checks"]}
    assert list(status) == [*REQUIRED[:-5], "export tflite", "runtime litert", "export onnx", "runtime onnxruntime",
                            "export micro", "c++ compiler", "export edgetpu", "cpu int8"]
    assert {n: status[n] for n in REQUIRED} == dict.fromkeys(REQUIRED, "ok")
    assert all(status[n] in ("ok", "warn") for n in OPTIONAL)
    for c in doctor_json["checks"]:
        assert set(c) == {"name", "status", "detail", "fix"}
        assert c["status"] == "ok" or c["fix"], c  # every problem comes with its fix
    litert = next(c for c in doctor_json["checks"] if c["name"] == "runtime litert")
    assert "max |diff| vs Keras" in litert["detail"]


def test_doctor_versions_match_metadata(doctor_json):
    v = doctor_json["versions"]
    assert v["python"] == ".".join(map(str, sys.version_info[:3]))
    for name in ("tensorflow", "tf-keras", "keras", "tensorflow-model-optimization", "tf2onnx", "onnx",
                 "onnxruntime", "ai-edge-litert", "tflite-micro", "numpy", "protobuf"):
        assert v[name] == metadata.version(name), name


def test_doctor_table_output():
    r = CliRunner().invoke(cli, ["doctor"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["package", "version"]
    assert any(line.split()[:2] == ["tensorflow", metadata.version("tensorflow")] for line in lines)
    assert any(line.split()[:3] == ["legacy", "keras", "ok"] for line in lines)
    assert " 0 failures (" in r.stdout


def test_doctor_names_keras3_when_tensorflow_came_first():
    """tf.keras resolved before edgekit set TF_USE_LEGACY_KERAS: doctor fails and says why."""
    p = _doctor_in_subprocess("import tensorflow as tf\ntf.keras.Model")
    assert p.returncode == 1, p.stderr[-2000:]
    out = json.loads(p.stdout)
    assert out["ok"] is False
    legacy = next(c for c in out["checks"] if c["name"] == "legacy keras")
    assert legacy["status"] == "fail"
    assert f"tf.keras is Keras {metadata.version('keras')}" in legacy["detail"]
    assert "before TF_USE_LEGACY_KERAS=1 was set" in legacy["detail"]
    assert "import edgekit" in legacy["fix"] and "TF_USE_LEGACY_KERAS=1" in legacy["fix"]


def test_legacy_keras_check_catches_tensorflow_keras_imports():
    """TensorFlow imported first, tf.keras untouched: `from tensorflow.keras import ...` is still Keras 3."""
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    code = ("import json, tensorflow\nfrom edgekit.doctor import check_legacy_keras\n"
            "print(json.dumps(check_legacy_keras().to_dict()))")
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    f = json.loads(p.stdout.strip().splitlines()[-1])
    assert f["status"] == "fail"
    assert "`from tensorflow.keras import ...` gives Keras" in f["detail"]
    assert "tf.keras is" not in f["detail"]  # the attribute still resolves lazily to tf_keras


def test_requirement_violation_names_package_and_version():
    reqs = ["numpy>=1.26.0", "protobuf<8.0.0,>=6.31.1", 'nvidia-nccl-cu12<3.0; extra == "and-cuda"',
            'enum34~=1.1; python_version < "3.4"']
    f = check_requirements("tensorflow", reqs, installed={"numpy": "1.24.4", "protobuf": "7.36.2"})
    assert f == Finding("deps tensorflow", "fail", "tensorflow: needs numpy>=1.26.0, installed 1.24.4",
                        'pip install "numpy>=1.26.0"')
    ok = check_requirements("tensorflow", reqs, installed={"numpy": "2.4.6", "protobuf": "7.36.2"})
    assert ok == Finding("deps tensorflow", "ok", "2 requirements met")


def test_requirement_checks_missing_and_non_key_packages():
    assert unmet_requirements(["onnx>=1.14.0", "requests"], {"ONNX": "1.13.1"}) == [
        ("onnx", ">=1.14.0", "1.13.1"), ("requests", "", None)]
    warn = check_requirements("tf2onnx", ["requests"], installed={})
    assert (warn.status, warn.detail) == ("warn", "tf2onnx: needs requests, not installed")
    fail = check_requirements("edgekit", ["click<9,>=8.1"], installed={"click": "9.0"})
    assert fail.status == "fail" and fail.fix == 'pip install "click<9,>=8.1"'


X86_AVX2 = "model name\t: Some Xeon\nflags\t\t: fpu sse2 sse4_2 avx avx2 fma\n"
X86_OLD = "model name\t: Old Atom\nflags\t\t: fpu sse2 sse4_2\n"
ARM_DOT = "Features\t: fp asimd asimddp i8mm\n"
ARM_PLAIN = "Features\t: fp asimd\n"


def test_cpu_int8_features():
    """The verdict is isa's: int8 on AVX2 without VNNI is not expected to be faster (a warning with why)."""
    avx2 = check_cpu(X86_AVX2, "x86_64")
    assert avx2.status == "warn" and avx2.detail.startswith("Some Xeon: x86-avx2 (AVX2, FMA); AVX2 without VNNI")
    assert avx2.detail.endswith("int8 is not expected to be faster than float here") and "--device" in avx2.fix
    vnni = check_cpu(X86_AVX2.replace("fma", "fma avx512f avx512_vnni"), "x86_64")
    assert vnni.status == "ok" and "x86-avx512-vnni" in vnni.detail and "int8 dot products in hardware" in vnni.detail
    old = check_cpu(X86_OLD, "x86_64")
    assert old.status == "warn" and "x86-sse" in old.detail and "no AVX2" in old.detail and old.fix
    assert check_cpu(ARM_DOT, "aarch64").status == "ok" and "arm-i8mm" in check_cpu(ARM_DOT, "aarch64").detail
    plain = check_cpu(ARM_PLAIN, "aarch64")  # NEON int8 kernels still beat float, by less than with SDOT
    assert plain.status == "ok" and "arm-neon" in plain.detail
    unknown = check_cpu("", "x86_64")
    assert unknown.status == "warn" and "unreadable" in unknown.detail


def test_edgetpu_compiler_optional(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    absent = check_edgetpu_compiler()
    assert absent.status == "warn" and "Debian/Ubuntu x86-64" in absent.fix
    fake = tmp_path / "edgetpu_compiler"
    fake.write_text("#!/bin/sh\necho 'Edge TPU Compiler version 16.0.384591198'\n")
    fake.chmod(0o755)
    present = check_edgetpu_compiler()
    assert present == Finding("export edgetpu", "ok", f"{fake} (Edge TPU Compiler version 16.0.384591198)")


def test_finding_rejects_unknown_status():
    with pytest.raises(ValueError, match="status"):
        Finding("x", "maybe", "")


def test_edgetpu_compiler_other_than_16_is_a_warning(tmp_path, monkeypatch):
    """edgekit's operator-version table (export/edgetpu_ops.py) describes compiler 16."""
    monkeypatch.setenv("PATH", str(tmp_path))
    fake = tmp_path / "edgetpu_compiler"
    fake.write_text("#!/bin/sh\necho 'Edge TPU Compiler version 15.0.340273435'\n")
    fake.chmod(0o755)
    f = check_edgetpu_compiler()
    assert f.status == "warn" and f.detail.startswith(f"{fake} (Edge TPU Compiler version 15.0.340273435); ")
    assert "describes compiler 16.0" in f.detail and "compiler.txt" in f.fix
