"""TFLite tensors map back to Keras layers: Sequential and functional, incl. fused Conv+BN+ReLU."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import UsageError


def _groups(model):
    from edgekit.export.convert import to_tflite
    from edgekit.formats.tflite_flatbuffer import read_tflite
    from edgekit.export.layermap import groups_of_graph

    rep = np.random.default_rng(0).random((8, *model.input_shape[1:]), dtype=np.float32)
    return groups_of_graph(model, read_tflite(to_tflite(model, "int8", rep)))


def test_sequential_conv_bn_relu_is_one_group():
    from edgekit._lazy import tf

    L = tf().keras.layers
    m = tf().keras.Sequential([tf().keras.Input((12, 12, 1)), L.Conv2D(4, 3, name="conv"),
                               L.BatchNormalization(name="bn"), L.ReLU(name="relu"), L.MaxPooling2D(name="pool"),
                               L.Flatten(name="flat"), L.Dense(3, name="dense")])
    groups = _groups(m)
    assert [g.layers for g in groups] == [("conv", "bn", "relu"), ("pool",), ("flat",), ("dense",)]
    assert [g.name for g in groups][0] == "conv+bn+relu"
    assert groups[-1].tensor == "StatefulPartitionedCall:0"  # the graph output maps to the last layer


def test_functional_branches_and_fusions(planted_model):
    groups = _groups(planted_model)
    assert [g.layers for g in groups] == [("conv_a", "bn_a", "relu_a"), ("bad",), ("conv_c",), ("pool",),
                                          ("logits",)]
    assert all(g.output_layer == g.layers[-1] for g in groups)


def test_functional_add_keeps_branches_apart():
    from edgekit._lazy import tf

    L = tf().keras.layers
    i = tf().keras.Input((8, 8, 2))
    a = L.Conv2D(2, 1, activation="relu", name="left")(i)
    b = L.Conv2D(2, 1, name="right")(i)
    s = L.Add(name="sum")([a, b])
    m = tf().keras.Model(i, L.Dense(2, name="head")(L.Flatten(name="flat")(s)))
    names = {g.output_layer: g.layers for g in _groups(m)}
    assert names["left"] == ("left",) and names["right"] == ("right",) and names["sum"] == ("sum",)


def test_unknown_layer_gets_did_you_mean(planted_model):
    from edgekit.export.layermap import select_groups

    with pytest.raises(UsageError, match=r"no layer 'badd'.*Did you mean \"bad\"") as e:
        select_groups(_groups(planted_model), ["badd"], planted_model, "--keep-float")
    assert "\n" not in str(e.value)
    with pytest.raises(UsageError, match="no quantized op of its own"):
        select_groups([], ["bad"], planted_model, "--keep-float")
