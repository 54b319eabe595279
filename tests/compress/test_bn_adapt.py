"""BatchNorm adaptation after each compression stage, and the accuracy limit of a compression run."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.compress.bn_adapt import adapt_batchnorm, batchnorm_layers


def _bn_model(momentum: float):
    from edgekit._lazy import keras

    k = keras()
    L = k.layers
    i = k.Input((8, 8, 1))
    x = L.BatchNormalization(momentum=momentum, name="bn1")(L.Conv2D(4, 3, name="conv1")(i))
    x = L.ReLU()(x)
    return k.Model(i, L.Dense(3, activation="softmax")(L.Flatten()(x)))


def test_statistics_become_the_average_of_the_images_whatever_the_momentum():
    """Momentum 0.999 would barely move the statistics; adaptation sets them to the batches' average,
    leaves the weights alone and restores the layer's momentum."""
    m = _bn_model(0.999)
    x = np.random.default_rng(0).normal(3.0, 2.0, (512, 8, 8, 1)).astype(np.float32)
    weights = [w.copy() for w in m.get_layer("conv1").get_weights()]
    pre = m.get_layer("conv1")(x).numpy().reshape(-1, 4)
    assert adapt_batchnorm(m, x) == 1
    bn = m.get_layer("bn1")
    np.testing.assert_allclose(bn.moving_mean.numpy(), pre.mean(0), rtol=0.02, atol=0.02)
    np.testing.assert_allclose(bn.moving_variance.numpy(), pre.var(0), rtol=0.05)
    assert bn.momentum == 0.999
    for a, b in zip(weights, m.get_layer("conv1").get_weights()):
        np.testing.assert_array_equal(a, b)


def test_finds_batchnorm_inside_qat_wrappers():
    from edgekit.compress.quantize import apply_qat

    qat = apply_qat(_bn_model(0.99), pruned=False, clustered=False)
    assert [layer.name for layer in batchnorm_layers(qat)] == ["bn1"]
    x = np.random.default_rng(1).normal(1.0, 1.0, (128, 8, 8, 1)).astype(np.float32)
    assert adapt_batchnorm(qat, x) == 1


def test_no_batchnorm_is_a_no_op(trained_cnn, digits):
    assert adapt_batchnorm(trained_cnn[0], digits.x_train[:64]) == 0


def test_a_run_that_loses_more_than_max_drop_is_written_and_fails(trained_small, small_digits, tmp_path):
    """Pruning 97% of the weights with one short fine-tune destroys the model: the run is written, then
    AccuracyLost (exit 1) gives the numbers and the stage; with the limit off it is a result."""
    from edgekit.compress import CompressConfig, compress
    from edgekit.errors import AccuracyLost

    config = dict(prune=0.97, prune_epochs=1, representative_samples=50)
    with pytest.raises(AccuracyLost) as e:
        compress(trained_small[0], small_digits, CompressConfig(**config, max_drop=2.0), out=tmp_path / "a")
    msg = str(e.value)
    assert "over the limit of 2 pt" in msg and "the prune stage lost the most" in msg and e.value.exit_code == 1
    assert (tmp_path / "a" / "model.keras").is_file()
    v = e.value.result.metrics["validation"]
    assert v["drop_pt"] > 2.0 and v["split"] == "validation" and v["max_drop_pt"] == 2.0
    res = compress(trained_small[0], small_digits, CompressConfig(**config, max_drop=None), measure=False)
    assert res.metrics["validation"]["drop_pt"] == pytest.approx(v["drop_pt"])


def test_max_drop_and_bn_adapt_are_checked():
    from edgekit.compress import CompressConfig
    from edgekit.errors import UsageError

    with pytest.raises(UsageError, match="max_drop must be a number of accuracy points"):
        CompressConfig(max_drop=-1)
    with pytest.raises(UsageError, match="bn_adapt must be true or false"):
        CompressConfig(bn_adapt="yes")
