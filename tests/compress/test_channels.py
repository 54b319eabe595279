"""Channel (structured) pruning on tiny models: real parameter/MAC drops, exact rewiring
(a model whose removed filters were zero computes the same function after pruning), BN,
depthwise chains, Add groups, Flatten->Dense, composition with cluster/QAT and int8 export."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.compress import CompressConfig, compress
from edgekit.compress.channels import plan_channels, prune_channels
from edgekit.errors import UsageError
from edgekit.models import build_model, model_summary

FAST = dict(epochs_per_stage=1, representative_samples=50)


def _x(shape=(28, 28, 1), n=16):
    return np.random.default_rng(1).random((n, *shape), dtype=np.float32)


def _zero_filters(model, name, idx):
    """Zero whole output filters/units of ``name`` (kernel columns and bias)."""
    layer = model.get_layer(name)
    w = layer.get_weights()
    w[0][..., idx] = 0
    w[1][idx] = 0
    layer.set_weights(w)


def _same_function(model, new, x):
    a, b = model.predict(x, verbose=0), new.predict(x, verbose=0)
    assert np.abs(a - b).max() <= 1e-5


def test_seed_cnn_half_the_channels_params_and_macs():
    model = build_model("cnn")
    new, plan = prune_channels(model, 0.5)
    assert plan.removed() == {"conv1": 16, "conv2": 32, "conv3": 32, "dense1": 32}  # not the classifier
    # conv1 16: 9*16+16, conv2 32: 9*16*32+32, conv3 32: 9*32*32+32, dense1: 3*3*32*32+32, output 32*10+10
    s0, s1 = model_summary(model), model_summary(new)
    assert s1["params"] == 160 + 4640 + 9248 + 9248 + 330 == 23626 and s0["params"] == 93322
    # conv1 26*26*9*16, conv2 11*11*9*16*32, conv3 3*3*9*32*32, dense1 288*32, output 32*10
    assert s1["macs"] == 97344 + 557568 + 82944 + 9216 + 320
    assert [l.name for l in new.layers] == [l.name for l in model.layers]
    assert new.get_layer("dense1").kernel.shape == (3 * 3 * 32, 32)


def test_zero_filters_removed_exactly_same_predictions_flatten_dense():
    """Plant zero filters (L1 = 0: ranked last), remove exactly those: the function is unchanged.
    conv3 -> Flatten -> dense1 checks the kernel rows removed at every spatial position."""
    model = build_model("cnn")
    rng = np.random.default_rng(0)
    planted = {}
    for name, n, k in (("conv1", 32, 8), ("conv2", 64, 16), ("conv3", 64, 48), ("dense1", 64, 16)):
        planted[name] = np.sort(rng.choice(n, k, replace=False))
        _zero_filters(model, name, planted[name])
    ratios = {"conv1": 8 / 32, "conv2": 16 / 64, "conv3": 48 / 64, "dense1": 16 / 64}
    new, plan = prune_channels(model, ratios)
    for name, idx in planted.items():
        assert np.array_equal(np.setdiff1d(np.arange(plan.sizes[name]), plan.keep[name]), idx), name
    _same_function(model, new, _x())
    # the kept dense1 rows are the original rows of the kept conv3 channels at each of the 9 positions
    keep3 = plan.keep["conv3"]
    rows = (np.arange(9)[:, None] * 64 + keep3[None, :]).reshape(-1)
    np.testing.assert_array_equal(new.get_layer("dense1").kernel.numpy(),
                                  model.get_layer("dense1").kernel.numpy()[rows][:, plan.keep["dense1"]])
    assert model_summary(new)["params"] < model_summary(model)["params"]


def _bn_model():
    from edgekit._lazy import keras

    L = keras().layers
    x = keras().Input((12, 12, 3), name="image")
    h = L.Conv2D(8, 3, name="conv1")(x)
    h = L.BatchNormalization(name="bn1")(h)
    h = L.ReLU(name="relu1")(h)
    h = L.Conv2D(6, 3, activation="relu", name="conv2")(h)
    h = L.GlobalAveragePooling2D(name="gap")(h)
    y = L.Dense(4, activation="softmax", name="output")(h)
    m = keras().Model(x, y, name="bn_net")
    rng = np.random.default_rng(2)
    bn = m.get_layer("bn1")
    bn.set_weights([rng.uniform(0.5, 2, 8), rng.normal(size=8), rng.normal(size=8), rng.uniform(0.5, 2, 8)])
    return m


def test_batchnorm_sliced_and_ranked_by_folded_filter():
    model = _bn_model()
    bn = model.get_layer("bn1")
    gamma, beta, mean, var = bn.get_weights()
    # filter 0 has the largest kernel but gamma 0: its folded filter is nothing, so it goes first;
    # filters 3 and 5 are zero filters whose BN output is 0 (beta = mean = 0)
    k, b = model.get_layer("conv1").get_weights()
    k[..., 0] *= 100
    k[..., [3, 5]] = 0
    b[[3, 5]] = 0
    model.get_layer("conv1").set_weights([k, b])
    gamma[0], beta[0] = 0, 0
    beta[[3, 5]], mean[[3, 5]] = 0, 0
    bn.set_weights([gamma, beta, mean, var])
    new, plan = prune_channels(model, {"conv1": 3 / 8})
    assert list(np.setdiff1d(np.arange(8), plan.keep["conv1"])) == [0, 3, 5]
    _same_function(model, new, _x((12, 12, 3)))
    for got, want in zip(new.get_layer("bn1").get_weights(), bn.get_weights()):
        np.testing.assert_array_equal(got, want[plan.keep["conv1"]])
    assert new.get_layer("conv2").kernel.shape == (3, 3, 5, 6)


def test_depthwise_chain_prunes_with_its_producer():
    model = build_model("ds-cnn")
    idx = np.arange(0, 32, 4)  # 8 of conv1's 32 filters
    _zero_filters(model, "conv1", idx)
    dw = model.get_layer("dwconv2")
    w = dw.get_weights()
    w[1][idx] = 0  # the depthwise bias of those channels: their output stays 0
    dw.set_weights(w)
    new, plan = prune_channels(model, {"conv1": 0.25})
    assert list(np.setdiff1d(np.arange(32), plan.keep["conv1"])) == list(idx)
    assert new.get_layer("dwconv2").depthwise_kernel.shape == (3, 3, 24, 1)
    assert new.get_layer("pwconv2").kernel.shape == (1, 1, 24, 64)
    _same_function(model, new, _x())


def _add_model(with_image: bool = False):
    from edgekit._lazy import keras

    L = keras().layers
    x = keras().Input((10, 10, 4 if with_image else 3), name="image")
    a = L.Conv2D(4 if with_image else 8, 3, padding="same", activation="relu", name="conv_a")(x)
    b = L.Conv2D(4 if with_image else 8, 3, padding="same", activation="relu", name="conv_b")(a)
    s = L.Add(name="add")([x, b] if with_image else [a, b])
    c = L.Conv2D(5, 3, activation="relu", name="conv_c")(s)
    h = L.GlobalAveragePooling2D(name="gap")(c)
    return keras().Model(x, L.Dense(3, activation="softmax", name="output")(h), name="add_net")


def test_add_group_shares_one_mask():
    model = _add_model()
    idx = np.array([1, 4, 6])
    _zero_filters(model, "conv_a", idx)
    _zero_filters(model, "conv_b", idx)
    new, plan = prune_channels(model, {"conv_b": 3 / 8})  # naming one member prunes the whole group
    assert sorted(plan.groups.popitem()[1]) == ["conv_a", "conv_b"]
    for name in ("conv_a", "conv_b"):
        assert list(np.setdiff1d(np.arange(8), plan.keep[name])) == [1, 4, 6]
    assert new.get_layer("conv_b").kernel.shape == (3, 3, 5, 5) and new.get_layer("conv_c").kernel.shape[2] == 5
    _same_function(model, new, _x((10, 10, 3)))
    # model-wide: conv_c is pruned too, the classifier is not
    assert set(plan_channels(model, 0.5).keep) == {"conv_a", "conv_b", "conv_c"}


def test_add_with_the_input_image_is_left_whole():
    model = _add_model(with_image=True)
    assert set(plan_channels(model, 0.5).keep) == {"conv_a", "conv_c"}  # conv_b is tied to the image
    with pytest.raises(UsageError, match="conv_b.*cannot lose channels.*'add' adds it"):
        plan_channels(model, {"conv_b": 0.5})


def test_unsupported_layer_is_named():
    from edgekit._lazy import keras

    L = keras().layers
    x = keras().Input((8, 8, 1))
    h = L.Conv2D(4, 3, name="conv1")(x)
    h = L.LayerNormalization(name="norm")(h)
    h = L.Flatten(name="flatten")(h)
    m = keras().Model(x, L.Dense(2, activation="softmax", name="output")(h))
    with pytest.raises(UsageError) as e:
        plan_channels(m, 0.5)
    msg = str(e.value)
    assert "'norm' (LayerNormalization)" in msg and "'conv1'" in msg and "\n" not in msg
    assert set(plan_channels(m, 0.5, skip_layers=("conv1",)).keep) == set()


@pytest.mark.parametrize("channels, words", [
    (0.0, "(0, 1)"), (1.0, "(0, 1)"), (-0.2, "(0, 1)"), ({"conv2": 1.5}, "channels['conv2']"),
])
def test_bad_ratios(channels, words):
    with pytest.raises(UsageError) as e:
        CompressConfig(channels=channels)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_bad_layer_names_and_zero_channels():
    model = build_model("cnn-small")
    with pytest.raises(UsageError, match='no layer \'conv22\'.*Did you mean "conv2"'):
        plan_channels(model, {"conv22": 0.5})
    with pytest.raises(UsageError, match="'pool1'.*Choose among: conv1, conv2"):
        plan_channels(model, {"pool1": 0.5})
    with pytest.raises(UsageError, match="leaves none"):
        plan_channels(model, {"conv1": 0.99})  # 16 channels: removes round(15.84) = 16
    with pytest.raises(UsageError, match="'output' cannot lose channels: it feeds the model's output"):
        plan_channels(model, {"output": 0.5})


def test_cli_bad_channels_exit_2_one_line(trained_small, tmp_path):
    from click.testing import CliRunner

    from edgekit.cli.main import cli

    _, path = trained_small
    for args, words in (
        (["--channels", "1.2"], "(0, 1)"),
        (["--channels", "half"], "--channels expects a fraction"),
        (["--channels", "conv3=0.5"], 'Did you mean "conv2"'),
        (["--channels", "conv1=0.999"], "leaves none"),
    ):
        r = CliRunner().invoke(cli, ["compress", str(path), "--limit", "600", "--out", str(tmp_path / "o"), *args])
        assert r.exit_code == 2, r.output
        lines = r.stderr.strip().splitlines()  # where the data comes from may be said first
        assert words in lines[-1] and lines[-1].startswith("Error: "), r.stderr
        assert all(line.startswith(("dataset: ", "Warning: ")) for line in lines[:-1]), r.stderr
    assert not (tmp_path / "o").exists()


def test_channels_then_cluster_qat_and_int8_export(trained_cnn, small_digits, tmp_path):
    from edgekit.export.api import export
    from edgekit.export.base import ExportConfig

    model, path = trained_cnn
    cfg = CompressConfig(channels={"conv2": 0.5, "conv3": 0.75, "dense1": 0.5}, cluster=8, quantize="qat", **FAST,
                         max_drop=None)  # a short fine-tune on 600 images: the mechanics, not the accuracy
    res = compress(path, small_digits, cfg, out=tmp_path / "c")
    inp, ch, cl, q = res.metrics["stages"]
    assert [s["stage"] for s in (ch, cl, q)] == ["channels", "cluster", "quantize"]
    assert res.technique == "channels+CQAT"
    assert ch["channels_removed"] == {"conv2": 32, "conv3": 48, "dense1": 32}
    assert q["params"] == ch["params"] < 0.3 * res.metrics["input"]["params"]
    assert q["macs"] < 0.6 * res.metrics["input"]["macs"]
    assert cl["max_unique_values"] <= 8  # clustered the narrow kernels
    # the raw int8 file shrinks (a dense, narrower model), not only its gzip
    assert q["tflite_int8_bytes"] < 0.45 * inp["tflite_int8_bytes"]
    assert q["tflite_int8_accuracy"] > 0.6
    out = export(tmp_path / "c" / "model.keras", small_digits, ["tflite-int8"], tmp_path / "e",
                 config=ExportConfig(representative_samples=20))
    tfl = out.path("tflite-int8")
    assert tfl.stat().st_size < 0.45 * inp["tflite_int8_bytes"]
    from edgekit.compress.metrics import tflite_accuracy

    assert tflite_accuracy(tfl.read_bytes(), small_digits) > 0.6


def test_recipe_and_cli_spell_channels():
    from click.testing import CliRunner

    from edgekit.cli.main import cli
    from edgekit.recipe.strict import parse_dataclass

    cfg = parse_dataclass(CompressConfig, {"channels": {"conv2": 0.5, "conv3": 0.25}, "distill": False}, "compress")
    assert cfg.channels == {"conv2": 0.5, "conv3": 0.25} and not cfg.distill and cfg.technique == "channels"
    assert CompressConfig.from_dict(cfg.to_dict()) == cfg
    assert parse_dataclass(CompressConfig, {"channels": 0.5}, "compress").channels == 0.5
    help_text = CliRunner().invoke(cli, ["compress", "--help"]).output
    for opt in ("--channels", "--channels-epochs", "--no-distill", "--distill-alpha", "--temperature"):
        assert opt in help_text, opt
