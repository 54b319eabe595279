"""Which layers pruning touches: tfmot accepts DepthwiseConv2D but prunes none of its
weights, so edgekit must leave it out (and say so) instead of reporting a sparsity it never reaches."""
from __future__ import annotations

import pytest

from edgekit.compress import CompressConfig
from edgekit.compress.prune import layer_targets, prunable_layers, unprunable_layers
from edgekit.errors import UsageError


def depthwise_model():
    from edgekit._lazy import keras

    keras = keras()
    inp = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inp)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(3, name="out")(x)
    return keras.Model(inp, out)


def test_depthwise_is_not_prunable_and_is_named():
    m = depthwise_model()
    assert prunable_layers(m) == ["conv", "out"]
    assert unprunable_layers(m) == ["dw"]


def test_model_wide_prune_leaves_depthwise_out_of_the_targets():
    targets = layer_targets(depthwise_model(), CompressConfig(prune=0.5))
    assert targets == {"conv": 0.5, "out": 0.5}


def test_per_layer_prune_of_a_depthwise_layer_is_refused():
    with pytest.raises(UsageError, match="dw"):
        layer_targets(depthwise_model(), CompressConfig(prune_layers={"dw": 0.5}))
