"""``edgekit validate ARTIFACT --device URI`` end to end: a second interpreter (exec://) is the device.

The device runs the same file on the same runtime as the host, so its metrics must equal the
host's; a device that cannot run it must end in one line, exit 2, with validation.json untouched.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgekit.cli.main import cli

PY = sys.executable
DEVICE = f"exec://{PY}"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """A tiny digits-shaped tf_keras model (a few steps of training), its .keras and int8/float .tflite."""
    from edgekit._lazy import keras
    from edgekit.data import load_dataset
    from edgekit.export.convert import to_tflite

    k = keras()
    k.utils.set_random_seed(0)
    ds = load_dataset("digits", seed=0)
    m = k.Sequential([k.Input((28, 28, 1)), k.layers.Conv2D(4, 3, strides=2, activation="relu"),
                      k.layers.Flatten(), k.layers.Dense(10, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(ds.x_train, ds.y_train, epochs=6, batch_size=32, verbose=0)
    root = tmp_path_factory.mktemp("devval")
    m.save(root / "model.keras")
    (root / "model_int8.tflite").write_bytes(to_tflite(m, "int8", ds.x_train[:64], batch_size=1))
    (root / "model.tflite").write_bytes(to_tflite(m, "float32", None, batch_size=1))
    return {"keras": root / "model.keras", "int8": root / "model_int8.tflite", "float": root / "model.tflite",
            "root": root}


def _validate(*args: str):
    return CliRunner().invoke(cli, ["validate", *args, "--dataset", "digits", "--runs", "20", "-q"])


def test_device_metrics_equal_host_metrics(tiny, tmp_path):
    out = tmp_path / "val"
    r = _validate(str(tiny["int8"]), "--reference", str(tiny["keras"]), "--device", DEVICE, "--out", str(out))
    assert r.exit_code == 0, r.output
    v = json.loads((out / "validation.json").read_text())
    host = v["targets"]["tflite-int8"]
    dev = host["devices"][DEVICE]
    for key in ("accuracy", "agreement_pct", "accuracy_drop_pt", "disagreements", "samples"):
        assert dev[key] == host[key], key
    assert abs(dev["max_abs_diff"] - host["max_abs_diff"]) < 1e-6 and 0.5 < dev["accuracy"] <= 1.0
    assert dev["status"] == "ok" and dev["runs"] == 20 and dev["threads"] == 1
    assert 0 < dev["latency_p50_ms"] <= dev["latency_p90_ms"]
    facts = dev["facts"]
    assert facts["python"] == ".".join(map(str, sys.version_info[:3])) and facts["runtime"] == "ai_edge_litert"
    assert facts["cpu"]["class"] == host["cpu"]["class"] and facts["cpu"]["features"]  # the same machine
    assert "cpuinfo" not in facts
    man = json.loads((out / "manifest.json").read_text())
    assert man["stages"]["validate"]["metrics"]["targets"]["tflite-int8"]["devices"][DEVICE]["facts"]["cpu"]
    assert man["stages"]["validate"]["config"]["devices"] == [DEVICE]
    md = (out / "validation.md").read_text()
    assert "## On devices" in md and "Host latency measured on:" in md and host["cpu"]["class"] in md


def test_without_reference_the_host_run_is_the_reference(tiny, tmp_path):
    """The brief's form: ``edgekit validate model.tflite --device exec://PY --dataset digits``."""
    out = tmp_path / "val"
    r = _validate(str(tiny["float"]), "--device", DEVICE, "--out", str(out))
    assert r.exit_code == 0, r.output
    v = json.loads((out / "validation.json").read_text())
    t = v["targets"]["tflite"]
    dev = t["devices"][DEVICE]
    assert dev["agreement_pct"] == 100.0 and dev["max_abs_diff"] <= 1e-6 and dev["accuracy"] == t["accuracy"]
    assert v["reference"]["runtime"] == "litert on this host"
    np.testing.assert_allclose(v["reference"]["accuracy"], t["accuracy"])


def _untouched_after(args: list[str], out: Path) -> str:
    before = (out / "validation.json").read_bytes()
    r = _validate(*args, "--out", str(out), "--force")
    assert r.exit_code == 2, r.output
    assert (out / "validation.json").read_bytes() == before
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.output
    return lines[0]


@pytest.fixture
def validated(tiny, tmp_path) -> Path:
    out = tmp_path / "val"
    assert _validate(str(tiny["int8"]), "--reference", str(tiny["keras"]), "--out", str(out)).exit_code == 0
    return out


def test_unreachable_device_is_one_line_and_writes_nothing(tiny, validated):
    line = _untouched_after([str(tiny["int8"]), "--reference", str(tiny["keras"]), "--device",
                             "exec:///nonexistent/bin/python3"], validated)
    assert "exec:///nonexistent/bin/python3" in line


def test_device_without_the_runtime_is_one_line_and_writes_nothing(tiny, validated, tmp_path):
    block = tmp_path / "block"  # ai_edge_litert and tflite_runtime cannot be imported on this "device"
    for mod in ("ai_edge_litert", "tflite_runtime"):
        (block / mod).mkdir(parents=True)
        (block / mod / "__init__.py").write_text("raise ImportError('not installed on this device')\n")
    line = _untouched_after([str(tiny["int8"]), "--reference", str(tiny["keras"]), "--device",
                             f"exec://env PYTHONPATH={block} {PY}"], validated)
    assert "litert" in line.lower() or "tflite" in line.lower()


def test_micro_on_a_device_is_one_line(tiny, validated):
    line = _untouched_after([f"micro={tiny['int8']}", "--reference", str(tiny["keras"]), "--device", DEVICE],
                            validated)
    assert "not supported on a device: micro needs a TFLite Micro host binary there" in line


def test_reference_is_required_without_a_device(tiny, tmp_path):
    r = _validate(str(tiny["int8"]), "--out", str(tmp_path / "v"))
    assert r.exit_code == 2 and "--reference" in r.output


def test_progress_without_a_terminal_has_no_control_characters(tiny, tmp_path):
    """A CI log: the command's output through pipes (no TTY) is plain text, progress included."""
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([PY, "-m", "edgekit.cli.main", "validate", str(tiny["int8"]), "--reference",
                           str(tiny["keras"]), "--device", DEVICE, "--dataset", "digits", "--runs", "5", "--out",
                           str(tmp_path / "v")], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert "(target 1/1)" in done.stderr and "on devices 1/1" in done.stderr
    assert "\x1b" not in done.stdout + done.stderr and "\r" not in done.stdout + done.stderr


def test_recipe_validate_devices_round_trip_and_key():
    import yaml

    from edgekit.recipe.schema import Recipe
    from edgekit.stages.export import export_key

    plain = Recipe.from_dict({"export": {"targets": ["tflite"]}})
    r = Recipe.from_dict({"export": {"targets": ["tflite"]}, "validate": {"devices": [DEVICE], "device_timeout_s": 30}})
    assert r.validate.settings().devices == (DEVICE,) and r.validate.device_timeout_s == 30
    assert Recipe.from_dict(yaml.safe_load(yaml.safe_dump(r.to_dict()))).validate == r.validate
    assert export_key(r)["devices"] == [DEVICE] and "devices" not in export_key(plain)


def test_a_float_target_that_differs_on_the_device_fails_there(tiny, tmp_path):
    """A device whose runtime gives other numbers: the float target fails its tolerance on that device."""
    from edgekit.validate import ValidateConfig, validate

    shim = tmp_path / "shim"  # the device's LiteRT adds 1e-3 to every output
    (shim / "ai_edge_litert").mkdir(parents=True)
    real = __import__("ai_edge_litert").__path__[0]
    (shim / "ai_edge_litert" / "__init__.py").write_text(f"__path__ = [{str(shim / 'ai_edge_litert')!r}, {real!r}]\n")
    (shim / "ai_edge_litert" / "interpreter.py").write_text(
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('_real_interp', {real + '/interpreter.py'!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "class Interpreter(mod.Interpreter):\n"
        "    def get_tensor(self, i):\n"
        "        return mod.Interpreter.get_tensor(self, i) + 1e-3\n")
    from edgekit.data import load_dataset

    uri = f"exec://env PYTHONPATH={shim} {PY}"
    res = validate([str(tiny["float"])], str(tiny["keras"]), load_dataset("digits", seed=0), tmp_path / "v",
                   config=ValidateConfig(runs=3, devices=(uri,)), check=False)
    dev = res.targets["tflite"]["devices"][uri]
    assert res.targets["tflite"]["status"] == "ok" and dev["status"].startswith("failed: max_abs_diff 0.001")
    assert [f.target for f in res.failures] == [f"tflite@{uri}"] and "_failure" not in dev
