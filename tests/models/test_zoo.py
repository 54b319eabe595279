import numpy as np
import pytest

from edgekit.errors import InputError, UsageError
from edgekit.models import MODELS, build_model, load_model, model_summary, save_model


def test_seed_cnn_is_exact():
    s = model_summary(build_model("cnn"))
    assert s["params"] == 93_322
    assert [l["type"] for l in s["layers"]] == [
        "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "Flatten", "Dense", "Dense"]
    # MACs from layer shapes: 26*26*32*9 + 11*11*64*288 + 3*3*64*576 + 576*64 + 64*10
    assert s["macs"] == 194_688 + 2_230_272 + 331_776 + 36_864 + 640


def test_variants_are_smaller_in_compute():
    macs = {n: model_summary(build_model(n))["macs"] for n in MODELS.names()}
    assert set(macs) == {"cnn", "cnn-small", "ds-cnn", "mlp"}
    assert macs["ds-cnn"] < macs["cnn"] / 4  # depthwise-separable saves most MACs
    assert macs["cnn-small"] < macs["cnn"]
    assert macs["mlp"] < macs["cnn-small"]


@pytest.mark.parametrize("name", ["cnn", "cnn-small", "ds-cnn", "mlp"])
def test_every_model_builds_and_trains_a_step(name, small_digits):
    from edgekit.train import TrainConfig, compile_for_training

    m = build_model(name, small_digits.info.input_shape, small_digits.info.num_classes)
    compile_for_training(m, TrainConfig(model=name), steps_per_epoch=1)
    before = [w.copy() for w in m.get_weights()]
    loss = m.train_on_batch(small_digits.x_train[:32], small_digits.y_train[:32])
    assert np.isfinite(loss[0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
    assert m.output_shape == (None, 10)


def test_l2_adds_penalty():
    m = build_model("cnn", l2=1e-3)
    assert len(m.losses) == 5  # 3 conv + 2 dense kernels


def test_input_shape_and_classes_come_from_data():
    m = build_model("cnn", (32, 32, 3), 4)
    assert m.input_shape == (None, 32, 32, 3) and m.output_shape == (None, 4)
    with pytest.raises(UsageError, match="does not fit input shape"):
        build_model("cnn", (8, 8, 1), 10)


def test_unknown_model():
    with pytest.raises(UsageError, match='Unknown model .cnnn.*Did you mean "cnn"'):
        build_model("cnnn")


def test_save_load_roundtrip(tmp_path):
    m = build_model("cnn-small")
    save_model(m, tmp_path / "m.keras")
    back = load_model(tmp_path / "m.keras")
    for a, b in zip(m.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]  # no temp files left


def test_load_bad_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "nope.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a loadable Keras model"):
        load_model(tmp_path / "junk.keras")
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(InputError, match="not a Keras model file"):
        load_model(tmp_path / "m.txt")
