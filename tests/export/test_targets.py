"""Every registered target: exported, run on its runtime, accurate, agreeing with Keras, right dtypes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.export import load_targets
from edgekit.formats.tflite_flatbuffer import read_tflite


def _tflite_float(path: Path, weights: str) -> None:
    g = read_tflite(path)
    assert g.input_tensors[0].dtype == "float32" and g.output_tensors[0].dtype == "float32"
    assert weights in g.dtypes(constant=True)


def _tflite_int8(path: Path) -> None:
    g = read_tflite(path)
    assert g.input_tensors[0].dtype == "int8" and g.output_tensors[0].dtype == "int8"
    assert g.input_tensors[0].scale and g.output_tensors[0].scale  # own scale / zero point
    assert g.dtypes(constant=False) == {"int8"}  # every activation is int8
    assert g.dtypes(constant=True) <= {"int8", "int32"}  # weights int8, biases/shapes int32
    assert "float32" not in g.dtypes()


def _tflite_int4(path: Path) -> None:
    g = read_tflite(path)
    assert g.input_tensors[0].dtype == "int8" and g.output_tensors[0].dtype == "int8"
    assert g.dtypes(constant=False) == {"int8"}  # int8 activations
    kernels = {g.tensor(op.inputs[1]).dtype for op in g.ops if op.op in ("CONV_2D", "FULLY_CONNECTED")}
    assert kernels == {"int4"} and g.dtypes(constant=True) == {"int4", "int32"}


def _onnx(path: Path, quantized: bool) -> None:
    import onnx

    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    ops = {n.op_type for n in proto.graph.node}
    init_types = {onnx.helper.tensor_dtype_to_np_dtype(t.data_type).name for t in proto.graph.initializer}
    if quantized:
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
        assert "int8" in init_types  # per-channel int8 weights
    else:
        assert "QuantizeLinear" not in ops and "float32" in init_types


# (min agreement %, max |diff|) of a reduced-precision target where 97% / 0.25 is too tight: int4 weights
# without fine-tuning (this 3-epoch model: 96.1% agreement, max |diff| 0.51, -1.4 pt; measured in 2026-11)
LOOSER = {"tflite-int4": (93.0, 0.75)}

# target -> check of its primary artifact. A registered target without an entry fails below.
CHECKS = {
    "tflite": lambda p: _tflite_float(p, "float32"),
    "tflite-fp16": lambda p: _tflite_float(p, "float16"),
    "tflite-dynamic": lambda p: _tflite_float(p, "int8"),
    "tflite-int8": _tflite_int8,
    "tflite-int4": _tflite_int4,
    "edgetpu": _tflite_int8,
    "onnx": lambda p: _onnx(p, quantized=False),
    "onnx-int8": lambda p: _onnx(p, quantized=True),
    "micro": _tflite_int8,
}


def test_every_registered_target_has_a_test():
    missing = sorted(set(load_targets().names()) - set(CHECKS))
    assert not missing, f"targets without a test in CHECKS: {missing}"


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_target_exports_runs_and_agrees(name, exported_all, trained_cnn, digits):
    spec = load_targets().get(name)
    path = exported_all.path(name)
    assert path.is_file() and path.stat().st_size > 10_000
    CHECKS[name](path)
    m = exported_all.validation.targets[name]
    ref = exported_all.validation.reference
    assert m["runtime"] == spec.runtime and m["samples"] == len(digits.y_test) == 359
    assert 0.0 <= m["accuracy"] <= 1.0 and ref["accuracy"] > 0.8
    assert abs(m["accuracy_drop_pt"] - (ref["accuracy"] - m["accuracy"]) * 100) < 1e-9
    if spec.exact:  # float: the same answer as Keras on every holdout sample
        assert m["max_abs_diff"] <= 1e-4 and m["agreement_pct"] == 100.0
    else:  # reduced precision: close, and reported
        min_agreement, max_diff = LOOSER.get(name, (97.0, 0.25))
        assert m["agreement_pct"] >= min_agreement and abs(m["accuracy_drop_pt"]) <= 2.0
        assert m["max_abs_diff"] < max_diff
    assert m["latency_p50_ms"] > 0 and m["latency_p90_ms"] >= m["latency_p50_ms"] and m["threads"] >= 1
    assert m["bytes"] == path.stat().st_size and 0 < m["gzip_bytes"] <= m["bytes"] * 1.01
    assert len(m["sha256"]) == 64


def test_sizes_follow_precision(exported_all):
    v = exported_all.validation.targets
    assert v["tflite-fp16"]["bytes"] < 0.6 * v["tflite"]["bytes"]
    assert v["tflite-int8"]["bytes"] < 0.35 * v["tflite"]["bytes"]
    assert v["tflite-int4"]["bytes"] < 0.6 * v["tflite-int8"]["bytes"]
    assert v["onnx-int8"]["bytes"] < 0.4 * v["onnx"]["bytes"]


def test_manifest_contract(exported_all):
    from edgekit.manifest import load_manifest, verify_manifest

    man = load_manifest(exported_all.out_dir)
    assert verify_manifest(exported_all.out_dir) == []
    exported = {a["path"]: a for a in man["artifacts"] if a["stage"] == "export"}
    for o in exported_all.outputs.values():
        for f in o.files:
            assert exported[f.path]["target"] == o.target
    metrics = man["stages"]["validate"]["metrics"]
    assert set(metrics["reference"]) >= {"path", "accuracy"}
    keys = {"target", "path", "runtime", "accuracy", "accuracy_drop_pt", "agreement_pct", "max_abs_diff",
            "mean_abs_diff", "latency_p50_ms", "latency_p90_ms", "threads", "runs", "bytes", "gzip_bytes", "sha256"}
    assert set(metrics["targets"]) == set(load_targets().names())
    for name, m in metrics["targets"].items():
        assert keys <= set(m), name
        assert m["target"] == name and (exported_all.out_dir / m["path"]).is_file()
    assert (exported_all.out_dir / "validation.json").is_file()
    md = (exported_all.out_dir / "validation.md").read_text()
    assert all(f"| {n} |" in md for n in load_targets().names())


def test_int8_targets_share_one_calibrated_model(exported_all):
    a = read_tflite(exported_all.path("edgetpu"))
    b = read_tflite(exported_all.path("micro"))
    assert a.input_tensors[0].shape_signature == (1, 28, 28, 1)  # static batch for the compiler / TFLM
    assert a.input_tensors[0].scale == b.input_tensors[0].scale
    v = exported_all.validation.targets
    assert v["micro"]["accuracy"] == pytest.approx(v["edgetpu"]["accuracy"], abs=0.006)


def test_int8_predictions_dequantize_to_probabilities(exported_all, digits):
    from edgekit.runtimes.litert import LiteRTRunner

    p = LiteRTRunner(exported_all.path("tflite-int8")).predict(digits.x_test[:20])
    assert p.dtype == np.float32 and np.allclose(p.sum(1), 1.0, atol=0.03)
