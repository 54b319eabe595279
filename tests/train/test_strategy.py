"""Strategies by name: auto, default, mirrored, multiworker, tpu."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgekit.errors import UsageError
from edgekit.train import TrainConfig, train
from edgekit.train.devices import auto_choice, gpus, tpus
from edgekit.train.strategy import STRATEGIES, is_chief, make_strategy


def test_registry_names_and_config_validation():
    assert STRATEGIES.names() == ["auto", "default", "mirrored", "multiworker", "tpu"]
    for name in STRATEGIES.names():
        assert TrainConfig(strategy=name).strategy == name
    with pytest.raises(UsageError, match='Unknown strategy .mirored.*Did you mean "mirrored"'):
        TrainConfig(strategy="mirored")
    with pytest.raises(UsageError, match="Unknown strategy"):
        make_strategy("horovod")


def test_auto_picks_the_default_strategy_on_a_cpu_only_machine(monkeypatch):
    if gpus() or tpus():
        pytest.skip("this machine has an accelerator")
    monkeypatch.delenv("TPU_NAME", raising=False)
    assert auto_choice() == "default"
    import tensorflow as tf

    notes: list[str] = []
    s = make_strategy("auto", progress=notes.append)
    assert s is tf.distribute.get_strategy()
    assert s.num_replicas_in_sync == 1 and is_chief(s)
    assert notes == ["strategy auto -> default"]


def test_tpu_without_a_tpu_is_one_clear_line(monkeypatch):
    if tpus():
        pytest.skip("this machine has a TPU")
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(UsageError, match="Strategy 'tpu' needs a TPU") as e:
        make_strategy("tpu")
    assert "\n" not in str(e.value)


def test_multiworker_needs_a_cluster(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UsageError, match="set TF_CONFIG or pass --workers"):
        make_strategy("multiworker")


def test_multiworker_after_tensorflow_started_is_refused(monkeypatch):
    import tensorflow as tf

    tf.constant(1.0) + 1  # the runtime is up in this test process
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["127.0.0.1:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    with pytest.raises(UsageError, match="must be created before TensorFlow runs any op"):
        make_strategy("multiworker")


def test_auto_and_mirrored_train_like_the_default(small_digits):
    """On one CPU, auto (-> default) and mirrored (one CPU replica) are the same training."""
    base = TrainConfig(model="cnn-small", epochs=2, seed=0, lr=0.003)
    ref = train(base, small_digits)
    for name in ("auto", "mirrored"):
        res = train(base.replace(strategy=name), small_digits)
        assert res.config.strategy == name
        assert res.metrics["test_accuracy"] == pytest.approx(ref.metrics["test_accuracy"], abs=0.02)
        diff = max(float(np.abs(a - b).max()) for a, b in zip(res.model.get_weights(), ref.model.get_weights()))
        assert diff < 1e-3, name
    assert ref.metrics["test_accuracy"] > 0.5
