"""edgekit.models.load: one handle for a model file or object, checked against a dataset."""
from __future__ import annotations

import types

import numpy as np
import pytest

from edgekit import vocab
from edgekit.errors import InputError, UsageError
from edgekit.models import ModelHandle, check_fits, load


def _fake_dataset(shape, classes=10):
    return types.SimpleNamespace(info=types.SimpleNamespace(input_shape=shape, num_classes=classes))


def test_load_a_tf_keras_file(trained_cnn, digits):
    model, path = trained_cnn
    h = load(path)
    assert h.format == vocab.FORMAT_TF_KERAS and h.is_keras and h.path == str(path)
    assert h.input_shape == (28, 28, 1) and h.num_outputs == 10 and h.layout == vocab.NHWC
    x = digits.x_test[:16]
    np.testing.assert_allclose(h.predict(x), model.predict(x, verbose=0), atol=1e-6)
    assert h.keras_model("export") is h.model


def test_load_an_in_memory_model(trained_cnn, digits):
    model, _ = trained_cnn
    h = load(model)
    assert h.model is model and h.path is None and h.is_keras
    assert load(h) is h  # a handle passes through
    probs = h.predict(digits.x_test[:8])
    assert probs.dtype == np.float32 and probs.shape == (8, 10)
    check_fits(h, digits)  # fits: no error


def test_check_fits_names_both_shapes(trained_cnn):
    with pytest.raises(InputError) as e:
        check_fits(load(trained_cnn[0]), _fake_dataset((8, 8, 1)))
    assert "(28, 28, 1)" in str(e.value) and "(8, 8, 1)" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(InputError, match="predicts 10 classes but the dataset has 12"):
        check_fits(trained_cnn[0], _fake_dataset((28, 28, 1), classes=12))


def test_unknown_format_name_is_a_usage_error(trained_cnn):
    with pytest.raises(UsageError, match="pytorch"):
        load(trained_cnn[1], format="pytorch")


def test_a_path_that_is_no_model_is_an_input_error(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("not a model")
    with pytest.raises(InputError, match="not a model edgekit can read") as e:
        load(p)
    assert "tf_keras" in str(e.value)
    with pytest.raises(InputError, match="does not exist"):
        load(tmp_path / "missing.keras")
    with pytest.raises(UsageError, match="Expected a Keras model"):
        load(object())


def test_a_format_without_keras_layers_cannot_be_compressed_one_line():
    h = ModelHandle(model=None, format=vocab.FORMAT_ONNX, framework="onnxruntime", layout=vocab.NCHW,
                    inputs=[], outputs=[], path="m.onnx")
    with pytest.raises(UsageError) as e:
        h.keras_model("compress")
    msg = str(e.value)
    assert "m.onnx is a onnx model, which edgekit cannot compress: that needs Keras layers" in msg
    assert "tf_keras and keras3 models can be" in msg and "\n" not in msg
    with pytest.raises(UsageError, match="offers no TensorFlow graph"):
        h.tf_graph()
