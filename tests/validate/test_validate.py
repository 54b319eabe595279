"""validate(): metrics, tolerance errors, merging, target inference, damaged artifacts."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgekit.errors import InputError, OutputExistsError, UsageError, ValidationError
from edgekit.validate import infer_target, validate
from edgekit.validate.metrics import compare


def test_compare_metrics_on_known_values():
    ref = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], np.float32)
    art = np.array([[0.8, 0.2], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]], np.float32)
    y = np.array([0, 1, 0, 0])
    m = compare(ref, art, y)
    assert m["accuracy"] == 0.5 and m["accuracy_drop_pt"] == pytest.approx(25.0)
    assert m["agreement_pct"] == 75.0 and m["disagreements"] == 1
    assert m["max_abs_diff"] == pytest.approx(0.2) and m["mean_abs_diff"] == pytest.approx(0.075)


def test_target_inferred_from_manifest_and_contents(exported_all, tmp_path):
    out = exported_all.out_dir
    assert infer_target(out / "micro/model_int8.tflite") == "micro"  # manifest beside the folder
    assert infer_target(out / "edgetpu/model_int8.tflite") == "edgetpu"
    for name in ("model_float32.tflite", "model_fp16.tflite", "model_dynamic.tflite", "model_int8.tflite",
                 "model_int4.tflite", "model_float32.onnx", "model_int8.onnx"):
        shutil.copy(out / name, tmp_path / name)  # no manifest: read from the file itself
    got = {n: infer_target(tmp_path / n) for n in sorted(p.name for p in tmp_path.iterdir())}
    assert got == {"model_dynamic.tflite": "tflite-dynamic", "model_float32.onnx": "onnx",
                   "model_float32.tflite": "tflite", "model_fp16.tflite": "tflite-fp16",
                   "model_int8.onnx": "onnx-int8", "model_int8.tflite": "tflite-int8",
                   "model_int4.tflite": "tflite-int4"}


def test_validate_merges_targets_into_one_folder(exported_all, trained_cnn, digits, tmp_path):
    out = exported_all.out_dir
    ref = trained_cnn[1]
    r1 = validate([out / "model_float32.tflite"], ref, digits, tmp_path, runs=5)
    assert set(r1.targets) == {"tflite"} and r1.targets["tflite"]["max_abs_diff"] <= 1e-4
    with pytest.raises(OutputExistsError, match="--force"):  # validation.json is there: only with force
        validate({"onnx-int8": out / "model_int8.onnx"}, ref, digits, tmp_path, runs=5)
    r2 = validate({"onnx-int8": out / "model_int8.onnx"}, ref, digits, tmp_path, runs=5, force=True)
    assert set(r2.targets) == {"tflite", "onnx-int8"}
    saved = json.loads((tmp_path / "validation.json").read_text())
    assert set(saved["targets"]) == {"tflite", "onnx-int8"}
    man = json.loads((tmp_path / "manifest.json").read_text())
    metrics = man["stages"]["validate"]["metrics"]
    assert set(metrics["targets"]) == {"tflite", "onnx-int8"} and metrics["reference"]["path"] == str(ref)
    assert metrics["reference"]["accuracy"] == pytest.approx(exported_all.validation.reference["accuracy"])
    assert r2.targets["onnx-int8"]["agreement_pct"] >= 97.0


def test_float_tolerance_miss_raises_typed_error(exported_all, trained_cnn, digits, tmp_path):
    # the dynamic-range model presented as the float target must fail the 1e-4 parity check
    with pytest.raises(ValidationError) as e:
        validate({"tflite": exported_all.out_dir / "model_dynamic.tflite"}, trained_cnn[0], digits, tmp_path, runs=3)
    err = e.value
    assert err.target == "tflite" and err.metric == "max_abs_diff" and err.limit == 1e-4 and err.value > 1e-4
    assert "tflite: max_abs_diff" in str(err)
    saved = json.loads((tmp_path / "validation.json").read_text())  # results are kept for inspection
    assert saved["targets"]["tflite"]["status"].startswith("failed")
    # a looser diff limit passes the diff check; what can still fail is float targets' exact agreement
    try:
        r = validate({"tflite": exported_all.out_dir / "model_dynamic.tflite"}, trained_cnn[0], digits, tmp_path,
                     runs=3, max_diff=0.5, force=True)
        assert r.targets["tflite"]["status"] == "ok"
    except ValidationError as loose:
        assert loose.metric == "agreement_pct" and 95 < loose.value < 100


@pytest.mark.parametrize("content", [b"", b"garbage" * 50, b"\x1c\x00\x00\x00TFL3" + b"\xff" * 200])
def test_damaged_tflite_is_an_input_error(trained_cnn, digits, tmp_path, content):
    p = tmp_path / "bad.tflite"
    p.write_bytes(content)
    with pytest.raises(InputError) as e:
        validate([p], trained_cnn[0], digits, tmp_path)
    assert "TFLite flatbuffer" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "validation.json").exists()


def test_truncated_real_model_is_an_input_error(exported_all, trained_cnn, digits, tmp_path):
    data = (exported_all.out_dir / "model_int8.tflite").read_bytes()
    p = tmp_path / "cut.tflite"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="damaged TFLite flatbuffer"):
        validate({"tflite-int8": p}, trained_cnn[0], digits, tmp_path)


def test_damaged_onnx_is_an_input_error(exported_all, trained_cnn, digits, tmp_path):
    p = tmp_path / "bad.onnx"
    p.write_bytes((exported_all.out_dir / "model_float32.onnx").read_bytes()[:5000])
    with pytest.raises(InputError, match="not a valid ONNX model"):
        validate([p], trained_cnn[0], digits, tmp_path)


def test_bad_artifact_arguments(exported_all, trained_cnn, digits, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        validate([tmp_path / "missing.tflite"], trained_cnn[0], digits, tmp_path)
    with pytest.raises(UsageError, match="Unknown target 'tflight'"):
        validate([f"tflight={exported_all.out_dir / 'model_int8.tflite'}"], trained_cnn[0], digits, tmp_path)
    (tmp_path / "model.bin").write_bytes(b"x" * 100)
    with pytest.raises(UsageError, match="Cannot tell the target"):
        validate([tmp_path / "model.bin"], trained_cnn[0], digits, tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        validate([exported_all.out_dir / "model_int8.tflite"], tmp_path / "nope.keras", digits, tmp_path)


# -- found by the CLI fuzzer (tests/fuzz) --------------------------------------------------
def test_onnx_that_loads_but_rejects_the_images_is_an_input_error(exported_all, trained_cnn, digits, tmp_path):
    """The probe runs zeros of the declared shape, which passes; the dataset's 28x28 images do not."""
    import onnx

    m = onnx.load(str(exported_all.out_dir / "model_float32.onnx"))
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 0  # width 0: a valid, runnable graph
    p = tmp_path / "narrow.onnx"
    onnx.save(m, str(p))
    with pytest.raises(InputError) as e:
        validate([p], trained_cnn[0], digits, tmp_path / "out", runs=3)
    msg = str(e.value)
    assert "narrow.onnx" in msg and "cannot run on onnxruntime with the dataset's images" in msg
    assert "\n" not in msg and "INVALID_ARGUMENT" in msg


def test_tflite_with_another_output_is_an_input_error(exported_all, trained_cnn, digits, tmp_path):
    """A file whose graph output is an inner tensor runs, but is not an export of the reference."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    data = (exported_all.out_dir / "model_float32.tflite").read_bytes()
    model = s.ModelT.InitFromObj(s.Model.GetRootAs(data, 0))
    sg = model.subgraphs[0]
    sg.outputs = [sg.operators[0].outputs[0]]  # the first conv's activations
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    p = tmp_path / "inner.tflite"
    p.write_bytes(bytes(b.Output()))
    with pytest.raises(InputError) as e:
        validate({"tflite": p}, trained_cnn[0], digits, tmp_path / "out", runs=3)
    msg = str(e.value)
    assert "inner.tflite" in msg and "gives outputs of shape" in msg and "(10,)" in msg and "\n" not in msg


def test_float_parity_is_relative_to_logits_and_nan_fails():
    """Probabilities keep the absolute limit; logits of magnitude 40 allow 40x the difference (float32
    rounding is relative); a NaN output is never within the limit."""
    from edgekit.validate.metrics import tolerance_failure

    y = np.array([0, 1])
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert tolerance_failure("tflite", compare(probs, probs + 2e-4, y), True, 1e-4) is not None
    logits = probs * 40
    m = compare(logits, logits + 2e-3, y)
    assert m["output_scale"] == pytest.approx(36.0) and tolerance_failure("tflite", m, True, 1e-4) is None
    assert tolerance_failure("tflite", compare(logits, logits + 5e-3, y), True, 1e-4) is not None
    nan = compare(probs, np.where(probs > 0.5, np.nan, probs), y)
    assert tolerance_failure("tflite", nan, True, 1e-4) is not None
