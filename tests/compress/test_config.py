"""CompressConfig validation and (de)serialisation (no TensorFlow work)."""
from __future__ import annotations

import pytest

from edgekit.compress import CompressConfig
from edgekit.errors import UsageError


def test_round_trip_and_technique():
    cfg = CompressConfig(prune=0.8, prune_layers={"dense1": 0.9}, skip_layers=["conv1"], cluster=16,
                         cluster_layers={"conv3": 8}, quantize="qat", prune_structure=None)
    d = cfg.to_dict()
    assert d["skip_layers"] == ["conv1"] and d["prune_layers"] == {"dense1": 0.9}
    back = CompressConfig.from_dict(d)
    assert back == cfg and back.technique == "PCQAT"
    assert CompressConfig(prune=0.5, quantize="qat").technique == "PQAT"
    assert CompressConfig(cluster=8, quantize="qat").technique == "CQAT"
    assert CompressConfig(quantize="qat").technique == "QAT"
    assert CompressConfig(prune=0.5, quantize="ptq").technique == "prune+PTQ"
    assert CompressConfig(prune_structure="2:4").structure == (2, 4)


def test_stage_train_configs():
    cfg = CompressConfig(optimizer="adam", lr=0.002, epochs_per_stage=3, qat_epochs=1)
    assert cfg.train_config("prune").learning_rate == pytest.approx(0.002)
    assert cfg.train_config("cluster").learning_rate == pytest.approx(0.0002)
    assert cfg.train_config("quantize").epochs == 1 and cfg.train_config("cluster").epochs == 3
    assert cfg.train_config("prune").epochs == 6  # pruning: twice epochs_per_stage by default
    assert CompressConfig(epochs_per_stage=3, prune_epochs=2).train_config("prune").epochs == 2


@pytest.mark.parametrize("kw, words", [
    (dict(prune=1.0), "[0, 1)"),
    (dict(prune=-0.1), "[0, 1)"),
    (dict(prune_layers={"dense1": 1.5}), "prune_layers['dense1']"),
    (dict(cluster=1), ">= 2"),
    (dict(cluster_layers={"conv3": 0}), ">= 2"),
    (dict(cluster=2.5), "integer"),
    (dict(quantize="int4"), "Unknown quantize 'int4'"),
    (dict(cluster_init="kmeans"), 'Did you mean "kmeans++"'),
    (dict(prune_schedule="poly"), "Unknown prune_schedule"),
    (dict(prune_structure="4:2"), "0 < M < N"),
    (dict(prune_structure="two:four"), "M:N"),
    (dict(epochs_per_stage=0), "positive integer"),
    (dict(optimizer="adamm"), "Unknown optimizer"),
    (dict(lr=-1.0), "lr must be a positive number"),
    (dict(prune_begin_step=10, prune_end_step=5), "after prune_begin_step"),
])
def test_bad_values_are_one_clear_line(kw, words):
    with pytest.raises(UsageError) as e:
        CompressConfig(**kw)
    msg = str(e.value)
    assert words in msg and "\n" not in msg


def test_unknown_option_in_dict():
    with pytest.raises(UsageError, match='Did you mean "prune"'):
        CompressConfig.from_dict({"prunee": 0.5})


def test_representative_size_is_the_old_spelling_of_representative_samples():
    from edgekit.recipe import Recipe

    assert CompressConfig.from_dict({"representative_size": 40}).representative_samples == 40
    r = Recipe.from_dict({"compress": {"prune": 0.5, "representative_size": 40}})
    assert r.compress.representative_samples == 40 and "representative_size" not in r.to_dict()["compress"]
    with pytest.raises(UsageError, match="old spelling of 'representative_samples'; give only one"):
        CompressConfig.from_dict({"representative_size": 40, "representative_samples": 50})


def test_default_fine_tunes_stop_on_validation_loss_and_explicit_ones_do_not():
    """No epoch count: channels/cluster/QAT fine-tunes run up to 10 epochs and stop after 2 without a better
    validation loss; pruning runs 4 (its schedule needs a length). A count given is exactly that."""
    from edgekit.compress import CompressConfig

    auto = CompressConfig(channels=0.5, prune=0.5, cluster=8, quantize="qat")
    for stage in ("channels", "cluster", "quantize"):
        tc = auto.train_config(stage)
        assert auto.stops_early(stage) and tc.epochs == 10 and tc.early_stopping == 2
    assert not auto.stops_early("prune") and auto.train_config("prune").epochs == 4
    fixed = CompressConfig(channels=0.5, prune=0.5, quantize="qat", epochs_per_stage=3)
    assert fixed.train_config("quantize").epochs == 3 and fixed.train_config("quantize").early_stopping == 0
    assert fixed.train_config("prune").epochs == 6
    one = CompressConfig(quantize="qat", qat_epochs=5)
    assert not one.stops_early("quantize") and one.train_config("quantize").epochs == 5


def test_distillation_defaults_to_the_channels_fine_tune_only():
    default = CompressConfig(channels=0.25, prune=0.5, quantize="qat")
    assert [s for s in ("channels", "prune", "cluster", "quantize") if default.distills(s)] == ["channels"]
    assert all(CompressConfig(distill=True).distills(s) for s in ("channels", "prune", "cluster", "quantize"))
    assert not any(CompressConfig(distill=False).distills(s) for s in ("channels", "prune", "cluster", "quantize"))
    assert default.qat_calibrate is True
    assert CompressConfig.from_dict(default.to_dict()) == default
    with pytest.raises(UsageError, match="distill must be true, false or null"):
        CompressConfig(distill="yes")
