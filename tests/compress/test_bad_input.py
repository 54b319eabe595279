"""Bad input to the compression stage: one clear line, the right error type, nothing written."""
from __future__ import annotations

import pytest

from edgekit.compress import CompressConfig, compress
from edgekit.errors import InputError, OutputExistsError, UsageError


def _check(exc_type, fn, *words):
    with pytest.raises(exc_type) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg
    return msg


def test_unknown_layer_lists_the_real_ones(trained_cnn, small_digits, tmp_path):
    model, _ = trained_cnn
    out = tmp_path / "never"
    for cfg in (CompressConfig(prune_layers={"dense9": 0.5}), CompressConfig(cluster_layers={"dense9": 8}),
                CompressConfig(prune=0.5, skip_layers=("convv1",))):
        _check(UsageError, lambda: compress(model, small_digits, cfg, out=out), "no layer", "conv1, pool1",
               "dense1, output")
    _check(UsageError, lambda: compress(model, small_digits, CompressConfig(prune_layers={"pool1": 0.5}), out=out),
           "pool1", "no weights")
    assert not out.exists()


def test_nothing_to_do_and_schedule_past_end(trained_cnn, trained_small, small_digits, tmp_path):
    model, _ = trained_cnn
    _check(UsageError, lambda: compress(model, small_digits, CompressConfig(), out=tmp_path / "x"), "Nothing to do")
    _check(UsageError, lambda: compress(model, small_digits, CompressConfig(prune=0.5, prune_end_step=10_000),
                                        out=tmp_path / "x"), "never be reached")
    _check(UsageError, lambda: compress(trained_small[0], small_digits, CompressConfig(cluster_layers={"conv1": 200})),
           "144 kernel weights", "cannot be clustered into 200")
    assert not (tmp_path / "x").exists()


def test_not_a_keras_model(small_digits, tmp_path):
    bad = tmp_path / "model.keras"
    bad.write_bytes(b"not a zip")
    _check(InputError, lambda: compress(bad, small_digits, CompressConfig(prune=0.5)), "not a loadable Keras model")
    _check(InputError, lambda: compress(tmp_path / "missing.keras", small_digits, CompressConfig(prune=0.5)),
           "does not exist")
    _check(InputError, lambda: compress(object(), small_digits, CompressConfig(prune=0.5)), "tf_keras Model")


def test_already_quantized_model(trained_small, small_digits):
    import tensorflow_model_optimization as tfmot

    qat = tfmot.quantization.keras.quantize_model(trained_small[0])
    _check(InputError, lambda: compress(qat, small_digits, CompressConfig(prune=0.5)), "already quantization-aware")


def test_qat_on_a_layer_tfmot_cannot_quantize(small_digits):
    from edgekit._lazy import keras

    L = keras().layers
    m = keras().Sequential([keras().Input((28, 28, 1)), L.Conv2D(4, 3, name="conv"), L.LayerNormalization(name="norm"),
                            L.Flatten(), L.Dense(10, activation="softmax", name="out")])
    _check(UsageError, lambda: compress(m, small_digits, CompressConfig(quantize="qat")), "norm (LayerNormalization)",
           "--quantize ptq")


def test_model_that_does_not_fit_the_data(small_digits):
    from edgekit.models import build_model

    m = build_model("mlp", (8, 8, 1), 10)
    _check(InputError, lambda: compress(m, small_digits, CompressConfig(prune=0.5)), "does not fit")


def test_existing_output_needs_force(trained_small, small_digits, tmp_path):
    (tmp_path / "compression.json").write_text("{}")
    _check(OutputExistsError, lambda: compress(trained_small[0], small_digits, CompressConfig(prune=0.5),
                                               out=tmp_path), "--force")
