"""OptimizeConfig and the recipe's optimize section: bad values are one line naming the fix."""
from __future__ import annotations

import pytest

from edgekit.errors import UsageError
from edgekit.optimize.config import OptimizeConfig
from edgekit.optimize.space import Candidate


def test_unknown_and_unsupported_targets():
    with pytest.raises(UsageError, match=r"Unknown target 'tflite-int9'.*Did you mean.*tflite-int8"):
        OptimizeConfig(target="tflite-int9")
    with pytest.raises(UsageError, match=r"cannot search for target 'onnx' yet.*tflite-int8"):
        OptimizeConfig(target="onnx")


@pytest.mark.parametrize("kw,match", [
    (dict(max_accuracy_drop=-1), "max_accuracy_drop must be a non-negative number"),
    (dict(budget_minutes=0), "budget_minutes must be a positive number"),
    (dict(max_size="12 parsecs"), "max_size must be a size"),
    (dict(channel_levels=(0.5, 1.0)), r"channel_levels must be a non-empty list of values in \(0, 1\)"),
    (dict(cluster_levels=(1,)), "cluster_levels"),
    (dict(quantize_modes=("int4",)), "quantize_modes must be some of qat, ptq"),
    (dict(qat_epochs=0), "qat_epochs must be a positive integer"),
    (dict(max_tune=0), "max_tune must be a positive integer"),
    (dict(accuracy_margin="wide"), "accuracy_margin must be a non-negative number or 'auto'"),
    (dict(accuracy_margin=-0.1), "accuracy_margin must be a non-negative number or 'auto'"),
])
def test_bad_values(kw, match):
    with pytest.raises(UsageError, match=match):
        OptimizeConfig(**kw)


def test_margin_is_the_one_sided_95_percent_bound_of_the_paired_drop():
    auto = OptimizeConfig()
    assert auto.margin_pt(16, 800) == pytest.approx(1.645 * 0.5)  # 1.645 * 100 * sqrt(16) / 800
    assert auto.margin_pt(25, 2000) == pytest.approx(1.645 * 0.25)
    assert auto.margin_pt(0, 800) == 0.0
    assert OptimizeConfig(accuracy_margin=0.2).margin_pt(16, 800) == 0.2
    assert OptimizeConfig(accuracy_margin=0).margin_pt(16, 800) == 0.0


def test_sizes_and_round_trip():
    c = OptimizeConfig(max_size="12KB", max_latency_us=50)
    assert c.max_size == 12000
    assert OptimizeConfig.from_dict(c.to_dict()) == c
    with pytest.raises(UsageError, match="Unknown optimize option 'budget'.*budget_minutes"):
        OptimizeConfig.from_dict({"budget": 3})


def test_candidate_key_and_compress_config():
    c = Candidate.of(channels={"conv2": 0.5, "conv1": 0.0}, prune={"dense1": 0.9}, cluster={"dense1": 16})
    assert c.key == "channels[conv2=0.5] prune[dense1=0.9] cluster[dense1=16] qat"
    cc = c.compress_config(OptimizeConfig(channels_epochs=3, seed=7))
    assert cc.channels == {"conv2": 0.5} and cc.channels_epochs == 3 and cc.prune_layers == {"dense1": 0.9}
    assert cc.technique == "channels+PCQAT" and cc.seed == 7 and cc.prune_schedule == "polynomial"


def test_recipe_optimize_section():
    from edgekit.recipe.schema import Recipe

    r = Recipe.from_dict({"model": {"path": "m.keras"}, "optimize": {"max_size": "20KB", "budget_minutes": 5},
                          "export": {"targets": ["tflite-int8"]}})
    assert r.optimize.max_size == 20000 and r.to_dict()["optimize"]["budget_minutes"] == 5
    assert "optimize" not in Recipe.from_dict({"model": {"path": "m.keras"}}).to_dict()
    with pytest.raises(UsageError, match="optimize.max_accuracy_drop must be"):
        Recipe.from_dict({"model": {"path": "m.keras"}, "optimize": {"max_accuracy_drop": "lots"}})
    with pytest.raises(UsageError, match="remove the compress section"):
        Recipe.from_dict({"model": {"path": "m.keras"}, "optimize": {}, "compress": {"prune": 0.5}})
