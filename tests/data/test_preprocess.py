"""--preprocess / data.preprocess: named pixel conventions and mean/std, applied once to a dataset."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.data import load_dataset
from edgekit.data.preprocess import parse_preprocess, preprocess_images
from edgekit.errors import InputError, UsageError


def test_named_conventions_map_unit_images():
    x = np.array([0.0, 0.5, 1.0], np.float32).reshape(1, 1, 3, 1)
    np.testing.assert_allclose(preprocess_images(x, "symmetric").ravel(), [-1, 0, 1])
    np.testing.assert_allclose(preprocess_images(x, "raw255").ravel(), [0, 127.5, 255], rtol=1e-6)
    np.testing.assert_allclose(preprocess_images(x, "mean=127.5,std=127.5").ravel(), [-1, 0, 1], atol=1e-6)
    assert preprocess_images(x, "unit") is x
    rgb = np.full((1, 1, 1, 3), 0.485, np.float32)
    assert preprocess_images(rgb, "imagenet")[0, 0, 0, 0] == pytest.approx(0.0, abs=1e-6)
    assert parse_preprocess("mean=1/2/3,std=4/5/6")[0] == pytest.approx((1 / 255, 2 / 255, 3 / 255))


@pytest.mark.parametrize("spec,msg", [("foo", "Unknown preprocess 'foo'"), ("mean=a,std=1", "must be numbers"),
                                      ("mean=1,std=0", "std must be > 0")])
def test_bad_specs_are_one_line(spec, msg):
    with pytest.raises(UsageError, match=msg):
        parse_preprocess(spec)


def test_imagenet_on_grey_images_names_the_channels():
    with pytest.raises(UsageError, match=r"3 mean values for images with 1 channel"):
        load_dataset("digits", preprocess="imagenet")


def test_dataset_is_preprocessed_once_and_records_it(digits):
    d = load_dataset("digits", preprocess="symmetric")
    assert d.info.preprocess == "symmetric" and d.info.sha256 == digits.info.sha256
    np.testing.assert_allclose(d.x_test, digits.x_test * 2 - 1, atol=1e-6)
    np.testing.assert_allclose(d.representative(5), digits.representative(5) * 2 - 1, atol=1e-6)
    assert d.info.to_dict()["preprocess"] == "symmetric"


def test_channel_mismatch_names_both_shapes_and_the_fix(digits):
    from edgekit.models.handle import ModelHandle, TensorSpec, check_fits

    def handle(shape):
        return ModelHandle(None, "onnx", "onnxruntime", "NHWC", [TensorSpec("x", shape)], [TensorSpec("y", (10,))])

    with pytest.raises(InputError, match=r"\(28, 28, 3\) does not fit dataset images \(28, 28, 1\): the model "
                                         r"takes 3 channel\(s\), the images have 1; .*images:DIR"):
        check_fits(handle((28, 28, 3)), digits)
    nchw = type("D", (), {"info": type("I", (), {"input_shape": (1, 28, 28), "num_classes": 10})()})()
    with pytest.raises(InputError, match=r"channels-first"):
        check_fits(handle((28, 28, 1)), nchw)
