"""Resolution inside the model: the stem strides twice as far, later layers compute on a quarter of
the positions, the input and output stay the same; models whose spatial size is fixed are refused."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.compress import CompressConfig, compress
from edgekit.compress.resolution import blocker, downsample, stem
from edgekit.errors import UsageError
from edgekit.models import build_model, model_summary


def test_the_stem_strides_twice_as_far_and_later_layers_do_a_quarter_of_the_work():
    model = build_model("resnet8", input_shape=(28, 28, 1), num_classes=10)
    name = stem(model)
    new = downsample(model, 2)
    assert tuple(new.get_layer(name).strides) == tuple(2 * s for s in model.get_layer(name).strides)
    assert new.input_shape == model.input_shape and new.output_shape == model.output_shape
    for layer in model.layers:  # same kernels, same values
        for a, b in zip(layer.get_weights(), new.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)
    macs0, macs1 = model_summary(model)["macs"], model_summary(new)["macs"]
    assert macs1 < 0.3 * macs0  # everything after the stem runs on 1/4 of the positions (28 -> 14)
    assert downsample(model, 1).get_layer(name).strides == model.get_layer(name).strides


def test_a_model_whose_spatial_size_feeds_a_dense_is_refused_naming_the_layer():
    model = build_model("cnn")  # Flatten -> Dense
    why = blocker(model)
    assert why is not None and "(Flatten)" in why and "global pooling" in why
    with pytest.raises(UsageError, match=r"\(Flatten\) fixes the spatial size"):
        downsample(model, 2)
    with pytest.raises(UsageError, match="downsample must be 1 .* Received: 3"):
        CompressConfig(downsample=3)


def test_compress_at_half_resolution_fine_tunes_a_model_doing_a_quarter_of_the_work(small_digits, tmp_path):
    from edgekit.train import TrainConfig, train

    res = train(TrainConfig(model="resnet8", epochs=2, seed=0, lr=0.003), small_digits, out=tmp_path / "t", force=True)
    cfg = CompressConfig(downsample=2, quantize="qat", epochs_per_stage=2, representative_samples=50, max_drop=None)
    out = compress(tmp_path / "t" / "model.keras", small_digits, cfg, out=tmp_path / "c")
    assert out.technique == "resolution+QAT"
    rows = {r["stage"]: r for r in out.metrics["stages"]}
    assert rows["resolution"]["downsample"] == 2 and rows["resolution"]["stem"] == stem(res.model)
    assert rows["resolution"]["macs"] < 0.3 * model_summary(res.model)["macs"]
    assert out.final["accuracy"] > 0.5  # relearned at half resolution (chance: 0.1)


def test_the_search_space_offers_half_resolution_only_where_the_model_allows_it():
    from edgekit.optimize.space import space_of

    assert space_of(build_model("resnet8", input_shape=(28, 28, 1), num_classes=10)).downsample
    assert not space_of(build_model("cnn")).downsample
