"""Bring your own model: Keras 3 files, SavedModel folders and (NCHW) ONNX files through the CLI's
export/validate/evaluate/compress, validated against each model's own framework.

The Keras 3 files come from tests/models/test_keras3.py's child process (no TF_USE_LEGACY_KERAS);
the SavedModel and the NCHW ONNX file are the trained reference CNN handed over as a user would."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgekit import vocab
from edgekit.cli.main import cli
from tests.models.onnx_builders import nchw_twin, op_mix

TARGETS = "tflite,tflite-int8,onnx"


@pytest.fixture(scope="module")
def sources(trained_cnn, tmp_path_factory):
    """{format: path}: the trained CNN as a SavedModel folder and as an NCHW ONNX file."""
    import onnx
    import tensorflow as tf

    from edgekit.export.onnx import keras_to_onnx

    model, _ = trained_cnn
    out = tmp_path_factory.mktemp("own")
    fn = tf.function(lambda x: {"probs": model(x, training=False)})
    spec = tf.TensorSpec((None, 28, 28, 1), tf.float32, name="x")
    module = tf.Module()
    module.model = model
    tf.saved_model.save(module, str(out / "sm"), signatures={"serving_default": fn.get_concrete_function(spec)})
    onnx.save(nchw_twin(keras_to_onnx(model, (28, 28, 1))), out / "nchw.onnx")
    return {vocab.FORMAT_SAVEDMODEL: out / "sm", vocab.FORMAT_ONNX: out / "nchw.onnx"}


def _export(path, out, targets=TARGETS, *extra):
    flags = [a for t in targets.split(",") for a in ("--target", t)]
    return CliRunner().invoke(cli, ["export", str(path), *flags, "--dataset", "digits",
                                    "--representative-samples", "50", "--runs", "5", "--out", str(out), "-q",
                                    *extra])


def _check_export(r, out, fmt, layout):
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "manifest.json").read_text())
    src = manifest["stages"]["export"]["source_model"]
    assert src["format"] == fmt and src["layout"] == layout
    val = json.loads((out / "validation.json").read_text())
    targets = val["targets"] if "targets" in val else val
    for name in TARGETS.split(","):
        row = targets[name]
        assert row["status"] == "ok", row
        if name != "tflite-int8":  # float targets: the validator held them to 1e-5 (max_diff) already
            assert row["agreement_pct"] == 100.0
        else:
            assert row["agreement_pct"] >= 95.0
    return src


@pytest.mark.parametrize("fmt,layout", [(vocab.FORMAT_SAVEDMODEL, vocab.NHWC), (vocab.FORMAT_ONNX, vocab.NCHW)])
def test_savedmodel_and_nchw_onnx_export_and_validate(sources, tmp_path, fmt, layout):
    src = _check_export(_export(sources[fmt], tmp_path / "e"), tmp_path / "e", fmt, layout)
    assert src["converted_from"] == "tf_graph"
    if fmt == vocab.FORMAT_ONNX:  # the onnx target is the user's file, checked and copied
        import onnx

        copied = onnx.load(tmp_path / "e" / "model_float32.onnx")
        assert [d.dim_value for d in copied.graph.input[0].type.tensor_type.shape.dim[1:]] == [1, 28, 28]


def test_keras3_file_exports_through_its_translation(keras3_files, tmp_path):  # noqa: F811
    folder, _ = keras3_files
    src = _check_export(_export(folder / "cnn.keras", tmp_path / "e"), tmp_path / "e", vocab.FORMAT_KERAS3,
                        vocab.NHWC)
    assert src["converted_from"] == "tf_keras"
    assert src["translation"]["ok"] is True and "sample images" in src["translation"]["proved_on"]


def test_keras3_without_translation_converts_its_own_graph(keras3_files, digits, tmp_path):  # noqa: F811
    """A Keras 3 model with a layer tf_keras lacks (LayerNormalization translation refused or not):
    the frozen Keras 3 graph is what TFLite and tf2onnx convert, equal to Keras 3 on real images."""
    from edgekit.models import load
    from edgekit.validate import export_and_validate

    folder, _ = keras3_files
    h = load(folder / "layernorm.keras", translate=False)
    assert not h.is_keras
    res = export_and_validate(h, digits, ["tflite", "onnx"], tmp_path / "e")
    for name in ("tflite", "onnx"):
        row = res.validation.targets[name]
        assert row["max_abs_diff"] <= 1e-4 and row["agreement_pct"] == 100.0


def test_signature_is_for_savedmodels_only(sources, tmp_path):
    r = _export(sources[vocab.FORMAT_ONNX], tmp_path / "e", "tflite", "--signature", "serving_default")
    assert r.exit_code == 2 and "--signature picks a SavedModel signature" in r.output


@pytest.mark.parametrize("fmt", ["savedmodel", "onnx"])  # vocab.FORMAT_SAVEDMODEL, vocab.FORMAT_ONNX
def test_compress_refuses_savedmodel_and_onnx_in_one_line(sources, tmp_path, fmt):
    r = CliRunner().invoke(cli, ["compress", str(sources[fmt]), "--dataset", "digits", "--quantize", "qat",
                                 "--out", str(tmp_path / "c")])
    assert r.exit_code == 2, r.output
    line = r.output.strip().splitlines()[-1]
    assert f"is a {fmt} model" in line and "needs Keras layers" in line and "keras3" in line
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("fmt", [vocab.FORMAT_SAVEDMODEL, vocab.FORMAT_ONNX])
def test_evaluate_takes_every_format(sources, fmt):
    r = CliRunner().invoke(cli, ["evaluate", str(sources[fmt]), "--dataset", "digits", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output[r.output.index("{"):])
    assert out["format"] == fmt and out["test_accuracy"] > 0.8 and "latency_batch1" not in out
    assert np.asarray(out["confusion_matrix"]).sum() == 359


def test_onnx_with_a_custom_op_is_one_line(tmp_path):
    import onnx

    proto = op_mix()
    proto.graph.node[0].domain = "com.example"
    proto.opset_import.append(onnx.helper.make_opsetid("com.example", 1))
    onnx.save(proto, tmp_path / "custom.onnx")
    r = _export(tmp_path / "custom.onnx", tmp_path / "e", "tflite")
    assert r.exit_code == 2 and "com.example" in r.output and "Traceback" not in r.output


def test_truncated_keras3_zip_is_one_line(keras3_files, tmp_path):  # noqa: F811
    folder, _ = keras3_files
    data = (folder / "cnn.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    r = _export(tmp_path / "cut.keras", tmp_path / "e", "tflite")
    assert r.exit_code == 2 and "Traceback" not in r.output and "cut.keras" in r.output
    assert not (tmp_path / "e").exists()


def test_compress_a_keras3_model_through_its_proven_translation(keras3_files, tmp_path):  # noqa: F811
    folder, _ = keras3_files
    r = CliRunner().invoke(cli, ["compress", str(folder / "sequential.h5"), "--dataset", "digits", "--limit", "300",
                                 "--prune", "0.5", "--epochs-per-stage", "1", "--out", str(tmp_path / "c"), "-q"])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "c" / "compression.json").read_text())
    assert m["final"]["tflite_int8_bytes"] > 0 and m["final"]["sparsity"] >= 0.45
    assert (tmp_path / "c" / "model.keras").is_file()
    # Conv + BatchNormalization: tfmot folds the pair, so QAT of the translated Keras 3 CNN runs
    r = CliRunner().invoke(cli, ["compress", str(folder / "cnn.keras"), "--dataset", "digits", "--limit", "300",
                                 "--quantize", "qat", "--epochs-per-stage", "1", "--out", str(tmp_path / "q"), "-q"])
    assert r.exit_code == 0, r.output
    q = json.loads((tmp_path / "q" / "compression.json").read_text())
    assert q["stages"][-1]["method"] == "QAT" and q["final"]["tflite_int8_bytes"] > 0


def test_run_with_model_path_a_keras3_file_and_a_savedmodel_folder(keras3_files, sources, tmp_path,  # noqa: F811
                                                                    monkeypatch):
    """model.path skips training; the handle is loaded once; a SavedModel folder's key hashes its files."""
    from edgekit.models import loading as loading_mod
    from edgekit.recipe import Recipe
    from edgekit.recipe.run import run
    from edgekit.stages.base import sha256_path

    folder, _ = keras3_files
    calls = []
    real = loading_mod.load
    monkeypatch.setattr(loading_mod, "load", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    for src in (folder / "cnn.keras", sources[vocab.FORMAT_SAVEDMODEL]):
        calls.clear()
        recipe = Recipe.from_dict({"data": {"spec": "digits"}, "model": {"path": str(src)}, "train": None,
                                   "export": {"targets": ["tflite", "onnx"]}})
        out = tmp_path / src.name
        run(recipe, out)
        assert len([c for c in calls if str(c) == str(src)]) == 1, calls
        man = json.loads((out / "manifest.json").read_text())
        assert man["run"]["train"]["status"] == "skipped"
        val = json.loads((out / "export" / "validation.json").read_text())
        rows = val["targets"] if "targets" in val else val
        assert rows["tflite"]["status"] == "ok" and rows["onnx"]["status"] == "ok"
    sm = sources[vocab.FORMAT_SAVEDMODEL]
    before = sha256_path(sm)
    (sm / "extra.txt").write_text("x")
    assert sha256_path(sm) != before


def test_preprocess_is_recorded_and_applied_to_reference_and_artifacts(sources, tmp_path):
    out = tmp_path / "e"
    r = _export(sources[vocab.FORMAT_ONNX], out, "tflite,onnx-int8", "--preprocess", "symmetric")
    assert r.exit_code == 0, r.output
    man = json.loads((out / "manifest.json").read_text())
    assert man["dataset"]["preprocess"] == "symmetric"
    val = json.loads((out / "validation.json").read_text())
    rows = val["targets"] if "targets" in val else val
    assert rows["tflite"]["status"] == "ok" and rows["tflite"]["agreement_pct"] == 100.0
