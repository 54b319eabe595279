"""Per-layer sensitivity: a planted fragile layer ranks first; the probes never touch the input model."""
from __future__ import annotations

import numpy as np

from edgekit.optimize.sensitivity import magnitude_pruned, measure
from edgekit.optimize.space import space_of


def _kill_weakest_half(layer) -> None:
    """Zero the lowest-L1 half of the layer's filters/units and their biases: removing them changes nothing."""
    k, b = layer.get_weights()
    score = np.abs(k).reshape(-1, k.shape[-1]).sum(0)
    dead = np.argsort(score, kind="stable")[: k.shape[-1] // 2]
    k[..., dead] = 0
    b[dead] = 0
    layer.set_weights([k, b])


def _hide_strongest_half(model, conv: str, dense: str) -> None:
    """Scale ``conv``'s strongest half of filters (kernel and bias) by 1/100 and the ``dense`` rows that read
    them (after pool + Flatten) by 100: the same function (ReLU and max-pooling commute with a positive
    scale), but the filters that matter now have the smallest L1 norms, so removing half removes them."""
    c, d = model.get_layer(conv), model.get_layer(dense)
    k, b = c.get_weights()
    strong = np.argsort(-np.abs(k).reshape(-1, k.shape[-1]).sum(0), kind="stable")[: k.shape[-1] // 2]
    k[..., strong] /= 100
    b[strong] /= 100
    c.set_weights([k, b])
    dk, db = d.get_weights()
    rows = np.isin(np.arange(dk.shape[0]) % k.shape[-1], strong)
    dk[rows] *= 100
    d.set_weights([dk, db])


def test_planted_fragile_layer_ranks_first(trained_small, digits):
    from edgekit.compress.layers import clone

    model = clone(trained_small[0])
    _kill_weakest_half(model.get_layer("conv1"))  # half its filters dead: the 0.5 channel probe costs nothing
    ref = model.predict(digits.x_val, verbose=0)
    _hide_strongest_half(model, "conv2", "output")  # the planted fragile layer
    np.testing.assert_allclose(model.predict(digits.x_val, verbose=0), ref, atol=1e-4)  # same function
    before = [w.copy() for w in model.get_weights()]
    space = space_of(model)
    assert space.narrowable == ("conv1", "conv2")  # not the classifier
    rows = measure(model, digits, space, channel_probe=0.5)
    assert [r.layer for r in rows] == ["conv2", "conv1", "output"]
    assert rows[0].channels_drop_pt > 10  # its probe removes the filters that matter
    assert rows[1].channels_drop_pt == 0.0
    assert next(r for r in rows if r.layer == "output").channels_drop_pt is None
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # probes worked on a copy


def test_magnitude_pruned_zeroes_the_smallest():
    k = np.array([[0.1, -3.0], [0.5, -0.2]])
    out = magnitude_pruned(k, 0.5)
    assert out.tolist() == [[0.0, -3.0], [0.5, 0.0]] and k[0, 0] == 0.1


def test_rank_is_drop_per_parameter_saved():
    from edgekit.optimize.sensitivity import LayerSensitivity, rank

    rows = [LayerSensitivity("big", 36864, 6.0, 2.0, 18000), LayerSensitivity("first", 288, 1.0, 4.0, 9000),
            LayerSensitivity("cheap", 18432, 1.0, 3.0, 27000), LayerSensitivity("output", 640, None, 50.0)]
    # 6/18000 = 3.3e-4 > 1/9000 = 1.1e-4 > 1/27000: the classifier (no channel probe) last
    assert [r.layer for r in rank(rows)] == ["big", "first", "cheap", "output"]
