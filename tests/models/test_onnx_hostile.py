"""Hostile models: NaN/inf weights (ONNX, Keras, SavedModel), zero or negative dimensions, a low
opset through onnx-int8, fixed batches through every ONNX and TFLite target, and an artifact that
agrees too little with its source model. Each bad input is one line and exit 2, never a crash."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import InputError, TargetsFailed
from edgekit.models.loading import load
from tests.models.onnx_builders import tiny_cnn

ROOT = Path(__file__).resolve().parents[2]


def _save(proto, path: Path) -> Path:
    import onnx

    onnx.save(proto, str(path))
    return path


def _poisoned(name: str, value: float, count: int = 3):
    """tiny_cnn (28x28x1, 10 classes: fits digits) with ``count`` values of initializer ``name`` set to ``value``."""
    from onnx import numpy_helper

    proto = tiny_cnn(size=28, classes=10)
    t = next(t for t in proto.graph.initializer if t.name == name)
    a = numpy_helper.to_array(t).copy()
    a.reshape(-1)[:count] = value
    t.CopyFrom(numpy_helper.from_array(a, name))
    return proto


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def _one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize("name,value,kind", [("w1", np.inf, "inf"), ("w2", np.nan, "NaN"), ("bf", -np.inf, "inf")])
def test_nonfinite_onnx_weights_are_refused_at_load(tmp_path, name, value, kind):
    p = _save(_poisoned(name, value), tmp_path / "bad.onnx")
    with pytest.raises(InputError) as e:
        load(p)
    msg = str(e.value)
    assert f"has 3 non-finite weights ({kind}) in {name!r}" in msg and "refuses to convert" in msg
    assert "\n" not in msg


def test_nonfinite_weights_in_external_data_are_found(tmp_path):
    import onnx

    p = tmp_path / "ext.onnx"
    onnx.save_model(_poisoned("w2", np.nan, count=5), str(p), save_as_external_data=True, location="w.bin",
                    size_threshold=0)
    with pytest.raises(InputError, match=r"5 non-finite weights \(NaN\) in 'w2'"):
        load(p)


def test_nonfinite_constant_node_is_found():
    from onnx import helper, numpy_helper

    from edgekit.models.weights_check import nonfinite_weights

    proto = tiny_cnn()
    value = numpy_helper.from_array(np.array([1.0, np.inf], np.float32), "k")
    proto.graph.node.insert(0, helper.make_node("Constant", [], ["k"], value=value))
    with pytest.raises(InputError, match=r"1 non-finite weight \(inf\) in 'k'"):
        nonfinite_weights(proto, "m.onnx")


@pytest.mark.parametrize("command,poison", [
    (["inspect"], ("w1", np.inf)),
    (["export", "--target", "tflite-int8"], ("w1", np.inf)),
    (["export", "--target", "onnx-int8"], ("w2", np.nan)),
    (["export", "--target", "tflite-int8"], ("w2", np.nan)),
], ids=["inspect-inf", "tflite-int8-inf", "onnx-int8-nan", "tflite-int8-nan"])
def test_cli_refuses_nonfinite_weights_with_one_line(tmp_path, command, poison):
    """No signal death (the int8 quantizer crashed on inf weights), no traceback, nothing left behind."""
    model = _save(_poisoned(*poison), tmp_path / "bad.onnx")
    out = tmp_path / "out"
    extra = ["--dataset", "digits", "--out", str(out), "-q"] if command[0] == "export" else []
    r = _cli(*command, str(model), *extra, cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    line = _one_line(r.stderr)
    assert line.startswith("Error: ") and "non-finite weights" in line and repr(poison[0]) in line
    assert not list(tmp_path.rglob(".edgekit-tmp*")) and not out.exists()


@pytest.mark.parametrize("where,dim,value,expect", [
    ("input", 2, 0, "dimension 2 of size 0"), ("input", 3, -4, "dimension 3 of size -4"),
    ("input", 0, 0, "dimension 0 of size 0"), ("output", 1, 0, "zero classes")])
def test_zero_or_negative_dims_are_refused(tmp_path, where, dim, value, expect):
    proto = tiny_cnn()
    v = (proto.graph.input if where == "input" else proto.graph.output)[0]
    v.type.tensor_type.shape.dim[dim].dim_value = value
    with pytest.raises(InputError) as e:
        load(_save(proto, tmp_path / "dims.onnx"))
    msg = str(e.value)
    assert f"graph {where}" in msg and expect in msg and "every dimension must be positive" in msg
    assert "\n" not in msg


def test_cli_zero_classes_is_one_line(tmp_path):
    proto = tiny_cnn(size=28, classes=10)
    proto.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 0
    r = _cli("inspect", str(_save(proto, tmp_path / "zero.onnx")), cwd=tmp_path)
    assert r.returncode == 2 and "zero classes" in _one_line(r.stderr)


def test_keras_models_with_nonfinite_weights_are_refused(tmp_path):
    import keras
    import tf_keras

    tk = tf_keras.Sequential([tf_keras.layers.Input((8, 8, 1)), tf_keras.layers.Flatten(), tf_keras.layers.Dense(4)])
    w = tk.layers[-1].get_weights()
    w[0][0, :2] = np.nan
    tk.layers[-1].set_weights(w)
    with pytest.raises(InputError, match=r"2 non-finite weights \(NaN\) in 'dense.*kernel"):
        load(tk)
    tk.save(tmp_path / "tk.keras")
    with pytest.raises(InputError, match=r"tk.keras' has 2 non-finite weights \(NaN\)"):
        load(tmp_path / "tk.keras")
    k3 = keras.Sequential([keras.layers.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(4)])
    w = k3.layers[-1].get_weights()
    w[1][:] = np.inf
    k3.layers[-1].set_weights(w)
    with pytest.raises(InputError, match=r"4 non-finite weights \(inf\) in '.*bias'"):
        load(k3)


def test_savedmodel_with_nonfinite_variables_is_refused(tmp_path):
    import tensorflow as tf

    from tests.models.savedmodel_builders import save_module, tiny_module

    m = tiny_module()
    m.d.assign(tf.fill((4, 3), np.nan))
    with pytest.raises(InputError, match=r"12 non-finite weights \(NaN\)"):
        load(save_module(tmp_path / "sm", m))


def test_finite_models_pass_the_weights_check(tmp_path):
    h = load(_save(tiny_cnn(), tmp_path / "ok.onnx"))
    assert h.num_outputs == 4


def test_opset9_model_quantizes_to_int8(tmp_path, digits):
    import onnx

    from edgekit.export import ExportConfig
    from edgekit.validate import ValidateConfig, export_and_validate

    proto = tiny_cnn(size=28, classes=10)
    proto.opset_import[0].version = 9
    proto.ir_version = 4
    onnx.checker.check_model(proto, full_check=True)
    res = export_and_validate(str(_save(proto, tmp_path / "op9.onnx")), digits, ["onnx-int8"], tmp_path / "out",
                              export_config=ExportConfig(representative_samples=20),
                              validate_config=ValidateConfig(runs=3, probe=False))
    q = onnx.load(str(res.path("onnx-int8")))
    assert max(o.version for o in q.opset_import if o.domain in ("", "ai.onnx")) == 13
    assert any(n.op_type == "DequantizeLinear" for n in q.graph.node)
    t = res.validation.targets["onnx-int8"]
    assert t["status"] == "ok" and t["agreement_pct"] >= 90.0 and t["nonfinite_outputs"] == 0


def test_opset_that_does_not_convert_is_one_line():
    from edgekit.export.onnx import quantizable_opset

    proto = tiny_cnn()
    proto.opset_import[0].version = 9
    proto.graph.node[0].op_type = "NoSuchOp"  # the version converter has no adapter for it
    with pytest.raises(InputError) as e:
        quantizable_opset(proto)
    assert "needs ONNX opset 13" in str(e.value) and "opset 9" in str(e.value) and "\n" not in str(e.value)


def _export(model: Path, targets: list[str], out: Path, digits):
    from edgekit.export import ExportConfig
    from edgekit.validate import ValidateConfig, export_and_validate

    return export_and_validate(str(model), digits, targets, out, export_config=ExportConfig(representative_samples=20),
                               validate_config=ValidateConfig(runs=3, probe=False))


FOUR = ["tflite", "tflite-int8", "onnx", "onnx-int8"]


def test_static_batch1_exports_and_validates_every_target(tmp_path, digits):
    """torch.onnx.export's default without dynamic_axes: a fixed batch of 1."""
    from edgekit.validate import validate

    model = _save(tiny_cnn(size=28, classes=10, batch=1, seed=2), tmp_path / "b1.onnx")
    res = _export(model, FOUR, tmp_path / "out", digits)
    v = res.validation.targets
    assert set(v) == set(FOUR) and all(t["status"] == "ok" for t in v.values())
    assert v["tflite"]["max_abs_diff"] <= 1e-4 and v["onnx"]["max_abs_diff"] == 0.0
    again = validate({n: res.path(n) for n in FOUR}, str(model), digits, tmp_path / "again", runs=3)
    assert {n: t["agreement_pct"] for n, t in again.targets.items()} == {n: t["agreement_pct"] for n, t in v.items()}


def test_static_batch7_exports_onnx_targets_and_refuses_tflite_in_one_line(tmp_path, digits):
    """A fixed batch of 7 (359 holdout images: a short last chunk) runs on onnxruntime; the TFLite
    targets, which run one image at a time, are refused with the exporter setting that fixes it."""
    from edgekit.validate import validate

    model = _save(tiny_cnn(size=28, classes=10, batch=7, seed=2), tmp_path / "b7.onnx")
    with pytest.raises(TargetsFailed) as e:
        _export(model, FOUR, tmp_path / "out", digits)
    assert set(e.value.failed) == {"tflite", "tflite-int8"} and e.value.exit_code == 2
    assert all("fixed batch of 7" in str(err) and "dynamic_axes" in str(err) for err in e.value.failed.values())
    assert str(e.value).startswith("2 of 4 targets failed") and ".;" not in str(e.value)
    res = e.value.result
    v = res.validation.targets
    assert set(v) == {"onnx", "onnx-int8"} and v["onnx"]["max_abs_diff"] == 0.0 and v["onnx-int8"]["status"] == "ok"
    again = validate({n: res.path(n) for n in ("onnx", "onnx-int8")}, str(model), digits, tmp_path / "again", runs=3)
    assert again.targets["onnx"]["agreement_pct"] == 100.0 and again.targets["onnx"]["samples"] == 359


def test_low_agreement_artifact_fails_validation_with_exit_1(tmp_path):
    """An int8-family artifact that agrees with its source on almost no image exits 1, naming the
    target, its agreement and the floor; ``--min-agreement 0`` lets it through."""
    from onnx import numpy_helper

    src = tiny_cnn(size=28, classes=10, softmax=False, seed=4)
    model = _save(src, tmp_path / "src.onnx")
    other = tiny_cnn(size=28, classes=10, softmax=False, seed=4)
    for name in ("wf", "bf"):  # the classes rotated by one: top-1 never agrees
        t = next(t for t in other.graph.initializer if t.name == name)
        t.CopyFrom(numpy_helper.from_array(np.roll(numpy_helper.to_array(t), 1, axis=0), name))
    art = _save(other, tmp_path / "int8.onnx")
    args = ["validate", f"onnx-int8={art}", "--reference", str(model), "--dataset", "digits", "--runs", "3", "-q"]
    r = _cli(*args, "--out", str(tmp_path / "v1"), cwd=tmp_path)
    assert r.returncode == 1, r.stderr[-2000:]
    line = _one_line(r.stderr)
    assert "onnx-int8: agreement_pct = 0 is outside the limit 90" in line and "floor of 90%" in line
    r = _cli(*args, "--out", str(tmp_path / "v2"), "--min-agreement", "0", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
