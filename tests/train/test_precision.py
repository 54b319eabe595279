"""Mixed precision (bfloat16 on CPU, float16 with loss scaling on GPU) and XLA."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import UsageError
from edgekit.models import build_model
from edgekit.train import TrainConfig, train
from edgekit.train.devices import policy_for
from edgekit.train.precision import (
    compute_dtypes, precision_policy, to_float32, with_float32_output,
)

CFG = TrainConfig(model="cnn", epochs=3, seed=0, lr=0.003)


@pytest.fixture(scope="module")
def default_run(small_digits):
    return train(CFG, small_digits)


def test_policy_per_device():
    assert policy_for("tpu", has_gpu=True) == "mixed_bfloat16"
    assert policy_for("default", has_gpu=True) == "mixed_float16"
    assert policy_for("mirrored", has_gpu=True) == "mixed_float16"
    assert policy_for("default", has_gpu=False) == "mixed_bfloat16"


def test_policy_is_restored_even_on_error():
    from tf_keras import mixed_precision as mp

    assert mp.global_policy().name == "float32"
    with pytest.raises(RuntimeError):
        with precision_policy("mixed_bfloat16") as name:
            assert name == mp.global_policy().name == "mixed_bfloat16"
            raise RuntimeError("boom")
    assert mp.global_policy().name == "float32"
    with pytest.raises(UsageError, match="Unknown mixed precision policy 'fp8'"):
        with precision_policy("fp8"):
            pass
    assert mp.global_policy().name == "float32"


@pytest.mark.parametrize("policy, low", [("mixed_bfloat16", "bfloat16"), ("mixed_float16", "float16")])
def test_output_layer_stays_float32_and_weights_are_kept(policy, low):
    import tensorflow as tf

    with precision_policy(policy):
        m = build_model("cnn", (28, 28, 1), 10)
        mixed = with_float32_output(m)
    dtypes = compute_dtypes(mixed)
    assert dtypes["conv1"] == dtypes["dense1"] == low
    assert dtypes["output"] == "float32"
    assert all(v.dtype == tf.float32 for v in mixed.weights)  # variables stay float32
    for a, b in zip(m.get_weights(), mixed.get_weights()):
        np.testing.assert_array_equal(a, b)
    y = mixed(np.zeros((2, 28, 28, 1), np.float32))
    assert y.dtype == tf.float32
    back = to_float32(mixed)
    assert set(compute_dtypes(back).values()) == {"float32"}
    np.testing.assert_allclose(back.predict(np.ones((2, 28, 28, 1), np.float32), verbose=0),
                               mixed.predict(np.ones((2, 28, 28, 1), np.float32), verbose=0), atol=0.05)


def test_float16_training_gets_a_loss_scale(small_digits):
    """mixed_float16 (the GPU policy; it also runs on CPU) wraps the optimizer in a LossScaleOptimizer."""
    from tf_keras import mixed_precision as mp

    from edgekit.train import compile_for_training
    from edgekit.train.trainer import current_lr

    with precision_policy("mixed_float16"):
        model = with_float32_output(build_model("cnn-small", (28, 28, 1), 10))
        compile_for_training(model, CFG, steps_per_epoch=5)
        assert isinstance(model.optimizer, mp.LossScaleOptimizer)
        assert current_lr(model.optimizer) == pytest.approx(0.003)
        h = model.fit(small_digits.x_train[:256], small_digits.y_train[:256], batch_size=64, epochs=2, verbose=0)
    assert all(np.isfinite(h.history["loss"])) and h.history["loss"][-1] < h.history["loss"][0]
    assert float(model.optimizer.loss_scale) > 1  # dynamic loss scale in use


def test_mixed_precision_run_reaches_the_default_accuracy(default_run, small_digits):
    from tf_keras import mixed_precision as mp

    res = train(CFG.replace(mixed_precision=True), small_digits)
    assert res.metrics["precision"] == "mixed_bfloat16"  # CPU-only machine
    assert default_run.metrics["test_accuracy"] > 0.6
    assert res.metrics["test_accuracy"] == pytest.approx(default_run.metrics["test_accuracy"], abs=0.05)
    assert set(compute_dtypes(res.model).values()) == {"float32"}  # artifacts are float32 models
    assert mp.global_policy().name == "float32"  # policy reset after training


def test_xla_run_reaches_the_default_accuracy(default_run, small_digits):
    from edgekit.train.xla import determinism_enabled

    notes: list[str] = []
    res = train(CFG.replace(jit=True, deterministic=True), small_digits, progress=notes.append)
    assert res.model.optimizer is not None and res.config.jit
    assert res.metrics["test_accuracy"] == pytest.approx(default_run.metrics["test_accuracy"], abs=0.05)
    assert not determinism_enabled()  # XLA's MaxPool gradient has no deterministic kernel
    assert any("op determinism is off" in n for n in notes)
    # the next deterministic run switches it back on
    train(CFG.replace(epochs=1, model="mlp", deterministic=True), small_digits)
    assert determinism_enabled()
