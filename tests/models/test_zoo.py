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
    assert set(MODELS.names()) == {"cnn", "cnn-small", "ds-cnn", "mlp", "resnet8", "mobilenet-v1",  # the zoo
                                   "mobilenet-v2", "mobilenet-v3-small", "efficientnet-b0", "resnet50"}  # backbones
    macs = {n: model_summary(build_model(n))["macs"] for n in ("cnn", "cnn-small", "ds-cnn", "mlp")}
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
    with pytest.raises(UsageError, match=r"needs an input shape \(height, width, channels\) of positive"):
        build_model("cnn", (0, 8, 1), 10)
    with pytest.raises(UsageError, match="needs an input shape"):
        build_model("resnet8", (32, 32), 10)


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


@pytest.mark.parametrize("name", ["cnn", "cnn-small", "ds-cnn", "mlp", "resnet8", "mobilenet-v1"])
@pytest.mark.parametrize("shape", [(32, 32, 3), (96, 96, 3), (16, 16, 3), (8, 8, 1), (5, 7, 3)])
def test_every_model_builds_for_any_input(name, shape):
    m = build_model(name, shape, 3)
    assert m.input_shape == (None, *shape) and m.output_shape == (None, 3)


def test_small_cnns_adapt_without_changing_the_seed_layout():
    # 96x96: pooled to at most 5x5 before Flatten, so the dense layer stays small
    big = build_model("cnn", (96, 96, 3), 10)
    assert big.get_layer("pool_flat").output_shape == (None, 5, 5, 64)
    assert big.get_layer("dense1").count_params() == 5 * 5 * 64 * 64 + 64
    # 28x28: the zoo as it always was (cnn-small flattens its 5x5 map: 12,810 parameters)
    assert build_model("cnn-small").count_params() == 12_810 and build_model("cnn").count_params() == 93_322
    # 16x16: the third conv pads instead of failing on a 2x2 map
    small = build_model("cnn", (16, 16, 3), 10)
    assert small.get_layer("conv3").padding == "same" and small.get_layer("conv3").output_shape == (None, 2, 2, 64)
    assert [l.name for l in build_model("cnn").layers] == [
        "conv1", "pool1", "conv2", "pool2", "conv3", "flatten", "dense1", "output"]


def test_mlperf_tiny_reference_sizes():
    """The published MLPerf Tiny numbers: ResNet-8 (32x32x3, 10 classes) 78,666 parameters and
    12.5 M MACs; VWW MobileNetV1 0.25 (96x96x3, 2 classes) 221,794 parameters and 7.49 M MACs."""
    r = model_summary(build_model("resnet8", (32, 32, 3), 10))
    assert (r["params"], r["macs"]) == (78_666, 12_501_632)
    m = model_summary(build_model("mobilenet-v1", (96, 96, 3), 2))
    assert (m["params"], m["macs"]) == (221_794, 7_489_664)
    half = model_summary(build_model("mobilenet-v1", (96, 96, 3), 2, alpha=0.5))
    assert half["params"] > 3 * m["params"]


def test_resnet8_params_and_macs_by_hand():
    """8x8x3 input, 2 classes; BatchNorm: 4 params per channel (2 trainable), 0 MACs (folded into
    the conv at export); Add: 0 MACs."""
    s = model_summary(build_model("resnet8", (8, 8, 3), 2))
    by = {l["name"]: l for l in s["layers"]}
    conv = [  # (name, kernel params + bias, MACs = output pixels * out channels * kh * kw * in channels)
        ("conv1", 3 * 3 * 3 * 16 + 16, 8 * 8 * 16 * 27),
        ("stage1_conv1", 3 * 3 * 16 * 16 + 16, 8 * 8 * 16 * 144),
        ("stage1_conv2", 3 * 3 * 16 * 16 + 16, 8 * 8 * 16 * 144),
        ("stage2_conv1", 3 * 3 * 16 * 32 + 32, 4 * 4 * 32 * 144),  # stride 2
        ("stage2_conv2", 3 * 3 * 32 * 32 + 32, 4 * 4 * 32 * 288),
        ("stage2_shortcut", 16 * 32 + 32, 4 * 4 * 32 * 16),
        ("stage3_conv1", 3 * 3 * 32 * 64 + 64, 2 * 2 * 64 * 288),
        ("stage3_conv2", 3 * 3 * 64 * 64 + 64, 2 * 2 * 64 * 576),
        ("stage3_shortcut", 32 * 64 + 64, 2 * 2 * 64 * 32),
        ("output", 64 * 2 + 2, 64 * 2),
    ]
    for name, params, macs in conv:
        assert (by[name]["params"], by[name]["macs"]) == (params, macs), name
    bn = {"conv1_bn": 16, "stage1_conv1_bn": 16, "stage1_conv2_bn": 16, "stage2_conv1_bn": 32,
          "stage2_conv2_bn": 32, "stage3_conv1_bn": 64, "stage3_conv2_bn": 64}
    for name, ch in bn.items():
        assert (by[name]["type"], by[name]["params"], by[name]["macs"]) == ("BatchNormalization", 4 * ch, 0)
    assert "stage1_shortcut" not in by  # identity shortcut where the shape does not change
    assert by["stage2_add"]["type"] == "Add" and by["stage2_add"]["macs"] == 0
    assert s["params"] == sum(p for _, p, _ in conv) + 4 * sum(bn.values())
    assert s["trainable_params"] == s["params"] - 2 * sum(bn.values())
    assert s["macs"] == sum(m for _, _, m in conv)


def test_mobilenet_params_and_macs_by_hand():
    """8x8x3, alpha 0.25: conv1 8 filters stride 2 -> 4x4; block 1: depthwise 3x3 on 8 channels,
    pointwise 8 -> 16."""
    s = model_summary(build_model("mobilenet-v1", (8, 8, 3), 2))
    by = {l["name"]: l for l in s["layers"]}
    assert (by["conv1"]["params"], by["conv1"]["macs"]) == (3 * 3 * 3 * 8 + 8, 4 * 4 * 8 * 27)
    assert (by["block1_dw"]["params"], by["block1_dw"]["macs"]) == (3 * 3 * 8 + 8, 4 * 4 * 8 * 9)
    assert (by["block1_pw"]["params"], by["block1_pw"]["macs"]) == (8 * 16 + 16, 4 * 4 * 16 * 8)
    assert (by["block2_dw"]["params"], by["block2_dw"]["macs"]) == (3 * 3 * 16 + 16, 2 * 2 * 16 * 9)  # stride 2
    assert by["block13_pw"]["output_shape"] == [1, 1, 256]
    assert by["block1_dw_bn"]["params"] == 4 * 8 and by["block1_dw_bn"]["macs"] == 0


def test_model_options_are_checked():
    with pytest.raises(UsageError, match=r"Model 'cnn' has no option 'alpha'. Its options: none."):
        build_model("cnn", alpha=0.5)
    with pytest.raises(UsageError, match=r"alpha \(width multiplier\) must be in \(0, 4\]. Received: 0."):
        build_model("mobilenet-v1", (32, 32, 3), 2, alpha=0)
    with pytest.raises(UsageError, match=r"has no option 'alpah'. Its options: alpha \(default 0.25\)"):
        build_model("mobilenet-v1", alpah=0.5)
