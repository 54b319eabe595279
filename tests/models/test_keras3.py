"""Keras 3 model files: detected by content, loaded safely with Keras 3, translated to tf_keras
only when proven equal, and convertible to TFLite without tf_keras.

The Keras 3 files and their reference predictions come from tests/models/keras3_builders.py
(the ``keras3_files`` fixture of tests/models/conftest.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit import vocab
from edgekit.errors import InputError
from edgekit.models import UnsafeModelError, load
from edgekit.models.loading import load_formats

def _ref(folder: Path, name: str) -> np.ndarray:
    return np.load(folder / f"{name}.npy", allow_pickle=False)


@pytest.mark.parametrize("name", ["cnn.keras", "cnn.h5", "functional.keras", "functional.h5", "sequential.h5"])
def test_keras3_files_load_translate_and_predict_like_keras3(keras3_files, name):
    import tf_keras

    from edgekit.models.keras3_translate import TOLERANCE, prove

    folder, x = keras3_files
    path = folder / name
    formats = load_formats()
    assert formats.get(vocab.FORMAT_KERAS3).detect(path)
    assert not formats.get(vocab.FORMAT_TF_KERAS).detect(path)
    h = load(path)
    ref = _ref(folder, path.stem)
    assert h.format == vocab.FORMAT_KERAS3 and h.framework == "keras" and h.layout == vocab.NHWC
    assert h.input_shape == (28, 28, 1) and h.num_outputs == 10
    np.testing.assert_allclose(h.predict(x), ref, rtol=0, atol=1e-6)  # Keras 3 itself is the reference
    assert h.info["translation"]["ok"] is True, h.info["translation"]
    assert h.info["translation"]["max_abs_diff"] <= TOLERANCE
    assert isinstance(h.model, tf_keras.Model) and h.is_keras
    assert prove(h.info["keras3_model"], h.model, x) <= TOLERANCE  # on real images too
    assert np.max(np.abs(h.model.predict(x, verbose=0) - ref)) <= TOLERANCE
    assert ref.std(axis=0).max() > 1e-3  # the outputs depend on the image (a test that can fail)


def test_tf_keras_loader_says_a_keras3_file_is_keras3(keras3_files):
    from edgekit.models import load_model

    folder, _ = keras3_files
    for name in ("cnn.keras", "cnn.h5"):
        with pytest.raises(InputError, match=r"saved by Keras 3\..*edgekit.models.load"):
            load_model(folder / name)


def test_translation_copies_trained_batchnorm_statistics(keras3_files):
    folder, _ = keras3_files
    h = load(folder / "cnn.keras")
    want = np.load(folder / "bn_moving_mean.npy", allow_pickle=False)
    np.testing.assert_array_equal(h.model.get_layer("bn").moving_mean.numpy(), want)
    assert np.abs(want).max() > 0.05  # non-trivial statistics, not the initial zeros


def test_tf_keras_files_are_not_taken_for_keras3(tmp_path):
    import tf_keras

    m = tf_keras.Sequential([tf_keras.layers.InputLayer((4, 4, 1)), tf_keras.layers.Flatten(),
                             tf_keras.layers.Dense(2)])
    formats = load_formats()
    for suffix in (".keras", ".h5"):
        m.save(tmp_path / f"m{suffix}")
        assert not formats.get(vocab.FORMAT_KERAS3).detect(tmp_path / f"m{suffix}")
        assert load(tmp_path / f"m{suffix}").format == vocab.FORMAT_TF_KERAS


def test_keras3_is_recognised_by_its_config_when_the_version_is_missing(keras3_files, tmp_path):
    import zipfile

    folder, _ = keras3_files
    stripped = tmp_path / "no_metadata.keras"
    with zipfile.ZipFile(folder / "cnn.keras") as src, zipfile.ZipFile(stripped, "w") as dst:
        for item in src.infolist():
            if item.filename != "metadata.json":
                dst.writestr(item, src.read(item))
    assert load_formats().get(vocab.FORMAT_KERAS3).detect(stripped)
    assert not load_formats().get(vocab.FORMAT_TF_KERAS).detect(stripped)


def test_lambda_is_refused_unless_trusted(keras3_files):
    folder, x = keras3_files
    with pytest.raises(UnsafeModelError, match="Lambda 'doubler'.*--trust-model"):
        load(folder / "lambda.keras")
    h = load(folder / "lambda.keras", trust=True)
    np.testing.assert_allclose(h.predict(x), _ref(folder, "lambda"), atol=1e-6)
    assert h.info["translation"]["ok"] is False and "'doubler' (Lambda)" in h.info["translation"]["reason"]


def test_oversized_and_corrupt_files_give_one_line_input_errors(keras3_files, tmp_path):
    folder, _ = keras3_files
    with pytest.raises(InputError, match="far larger than a small vision model") as e:
        load(folder / "wide.keras")
    assert "\n" not in str(e.value)
    data = (folder / "cnn.keras").read_bytes()
    cut = tmp_path / "cut.keras"
    cut.write_bytes(data[: len(data) // 2])
    for fmt in (None, vocab.FORMAT_KERAS3):
        with pytest.raises(InputError) as e:
            load(cut, format=fmt)
        assert "cut.keras" in str(e.value) and "\n" not in str(e.value) and "Traceback" not in str(e.value)


def test_untranslatable_layer_keeps_keras3_and_names_the_layer(keras3_files):
    import keras

    folder, x = keras3_files
    h = load(folder / "layernorm.keras")
    t = h.info["translation"]
    assert t["ok"] is False and "'layer_norm' (LayerNormalization) cannot be translated" in t["reason"]
    assert isinstance(h.model, keras.Model) and not h.is_keras
    np.testing.assert_allclose(h.predict(x), _ref(folder, "layernorm"), atol=1e-6)


def _litert(content: bytes, x: np.ndarray) -> np.ndarray:
    """The .tflite's outputs on LiteRT (int8 in/out through the tensors' own scale and zero point)."""
    from edgekit.runtimes import LiteRTRunner

    return LiteRTRunner(content).predict(x)


@pytest.mark.parametrize("name", ["layernorm", "functional"])
def test_tf_graph_converts_to_tflite_without_tf_keras(keras3_files, name):
    import tensorflow as tf

    folder, x = keras3_files
    h = load(folder / f"{name}.keras", translate=False)
    ref = _ref(folder, name)
    g = h.tf_graph()
    assert g.frozen and g.trackable is None and g is h.tf_graph()
    np.testing.assert_allclose(g(x).numpy(), ref, atol=1e-6)
    cf = g.concrete()  # weights frozen into constants
    y = _litert(tf.lite.TFLiteConverter.from_concrete_functions([cf]).convert(), x)
    assert np.max(np.abs(y - ref)) <= 1e-4

    conv = tf.lite.TFLiteConverter.from_concrete_functions([cf])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x[i: i + 1]] for i in range(len(x)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    q = _litert(conv.convert(), x)
    spread = float(ref.max() - ref.min())
    assert np.max(np.abs(q - ref)) <= 0.1 * spread  # int8: close to Keras 3, not bit-equal
    assert np.mean(q.argmax(1) == ref.argmax(1)) >= 0.85  # near-uniform softmax: ties flip


def _tiny_keras3(layer):
    """A Keras 3 model Input(8, 8, 1) -> layer -> Flatten -> Dense(3), built in this process
    (``import keras`` is Keras 3 here too, although TF_USE_LEGACY_KERAS=1 made tf.keras tf_keras)."""
    import keras

    inp = keras.Input((8, 8, 1))
    return keras.Model(inp, keras.layers.Dense(3, name="head")(keras.layers.Flatten()(layer(inp))))


def test_untranslatable_reasons_name_the_layer_and_its_class():
    import keras
    import tensorflow as tf

    from edgekit.models.keras3_format import translation_info

    assert keras.__version__.startswith("3.") and tf.keras.layers.Dense.__module__.startswith("tf_keras")

    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    cases = {"'twice' (Doubler) cannot be translated: Doubler is not among": Doubler(name="twice"),
             "'hs' (Conv2D) cannot be translated: tf_keras Conv2D rejects its config (Unknown activation":
                 keras.layers.Conv2D(2, 3, activation="hard_silu", name="hs")}
    for reason, layer in cases.items():
        model, info = translation_info(_tiny_keras3(layer))
        assert model is None and info["ok"] is False and reason in info["reason"], info


def test_a_translation_that_computes_differently_is_refused_with_its_diff(monkeypatch):
    import keras

    from edgekit.models import keras3_translate
    from edgekit.models.keras3_format import translation_info

    k3 = _tiny_keras3(keras.layers.Conv2D(2, 3, name="conv"))
    x = np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32)
    h = load(k3, sample=x)  # an in-memory Keras 3 model, proven on the given images
    assert h.format == vocab.FORMAT_KERAS3 and h.is_keras and h.info["translation"]["proved_on"] == "4 sample images"
    np.testing.assert_allclose(h.predict(x), k3.predict(x, verbose=0), atol=0)

    real = keras3_translate.translate

    def off_by_a_bit(m):
        twin = real(m)
        kernel, bias = twin.get_layer("head").get_weights()
        twin.get_layer("head").set_weights([kernel, bias + 1e-3])
        return twin

    monkeypatch.setattr(keras3_translate, "translate", off_by_a_bit)
    model, info = translation_info(k3)
    assert model is None and info["ok"] is False and abs(info["max_abs_diff"] - 1e-3) < 1e-5
    assert "differs from Keras 3 by 0.001" in info["reason"]
