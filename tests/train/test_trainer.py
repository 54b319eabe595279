import json

import numpy as np
import pytest

from edgekit.errors import OutputExistsError
from edgekit.train import TrainConfig, train


def test_train_writes_run_and_learns(small_digits, tmp_path):
    res = train(TrainConfig(model="cnn-small", epochs=3, lr=0.003), small_digits, out=tmp_path / "run")
    out = tmp_path / "run"
    assert {p.name for p in out.iterdir()} == {"model.keras", "history.json", "curves.png", "manifest.json"}
    hist = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in hist] == [1, 2, 3]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds", "images_per_second"} <= set(hist[0])
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert res.metrics["test_accuracy"] > 0.6  # 10 classes: chance is 0.1
    man = json.loads((out / "manifest.json").read_text())
    assert man["dataset"]["sha256"] == small_digits.info.sha256
    assert man["stages"]["train"]["metrics"]["params"] == res.summary["params"]
    assert {a["path"] for a in man["artifacts"]} == {"model.keras", "history.json", "curves.png"}
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_result(small_digits):
    cfg = TrainConfig(model="cnn-small", epochs=1, seed=7)
    a, b = train(cfg, small_digits), train(cfg, small_digits)
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    c = train(cfg.replace(seed=8), small_digits)
    assert not np.array_equal(a.model.get_weights()[0], c.model.get_weights()[0])


@pytest.mark.parametrize(
    "schedule, kw, expected",
    [
        ("constant", {}, [0.01, 0.01, 0.01, 0.01]),
        ("step", {"step_every": 2, "step_factor": 0.5}, [0.01, 0.01, 0.005, 0.005]),
        ("exponential", {"decay_rate": 0.5}, [0.01, 0.005, 0.0025, 0.00125]),
        ("cosine", {}, [0.01, 0.0085355, 0.005, 0.0014645]),
    ],
)
def test_lr_recorded_per_epoch_follows_schedule(small_digits, schedule, kw, expected):
    cfg = TrainConfig(model="mlp", optimizer="sgd", lr=0.01, schedule=schedule, epochs=4, **kw)
    res = train(cfg, small_digits)
    np.testing.assert_allclose([r["lr"] for r in res.history], expected, rtol=1e-4)


@pytest.mark.parametrize("optimizer", ["gd", "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"])
def test_every_optimizer_lowers_the_loss(small_digits, optimizer):
    res = train(TrainConfig(model="mlp", optimizer=optimizer, epochs=3), small_digits)
    assert res.history[-1]["loss"] < res.history[0]["loss"]


def test_gd_is_full_batch(small_digits):
    res = train(TrainConfig(model="mlp", optimizer="gd", epochs=2), small_digits)
    assert res.model.optimizer.iterations.numpy() == 2  # one step per epoch


def test_l2_shrinks_weights(small_digits):
    plain = train(TrainConfig(model="mlp", epochs=3), small_digits)
    reg = train(TrainConfig(model="mlp", epochs=3, l2=0.01), small_digits)
    norm = lambda m: sum(float((w ** 2).sum()) for w in m.get_weights()[::2])
    assert norm(reg.model) < 0.8 * norm(plain.model)


def test_early_stopping_stops(small_digits):
    res = train(TrainConfig(model="mlp", optimizer="sgd", lr=5.0, epochs=30, early_stopping=2), small_digits)
    assert res.metrics["epochs_run"] < 30


def test_existing_out_is_kept_without_force(small_digits, tmp_path):
    (tmp_path / "model.keras").write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="--force"):
        train(TrainConfig(model="mlp", epochs=1), small_digits, out=tmp_path)
    assert (tmp_path / "model.keras").read_bytes() == b"precious"
    train(TrainConfig(model="mlp", epochs=1), small_digits, out=tmp_path, force=True)
    assert (tmp_path / "model.keras").read_bytes() != b"precious"


def test_augment_stays_out_of_the_model(small_digits):
    res = train(TrainConfig(model="cnn-small", epochs=2, lr=0.003, augment=True), small_digits)
    assert [l.name for l in res.model.layers][0] == "conv1"  # nothing added to the exported graph
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    plain = train(TrainConfig(model="cnn-small", epochs=2, lr=0.003), small_digits)
    assert res.history[0]["loss"] != plain.history[0]["loss"]  # the inputs really changed


_HASH_SCRIPT = """
import hashlib, edgekit
from edgekit.data import load_dataset
from edgekit.train import TrainConfig, train
r = train(TrainConfig(model="cnn-small", epochs=1, seed=3, deterministic={det}), load_dataset("digits", limit=300))
print(hashlib.sha256(b"".join(w.tobytes() for w in r.model.get_weights())).hexdigest())
"""


@pytest.mark.parametrize("det", [False, True])
def test_same_seed_same_weights_across_processes(det):
    import subprocess
    import sys

    run = lambda: subprocess.run([sys.executable, "-c", _HASH_SCRIPT.format(det=det)], capture_output=True,
                                 text=True, timeout=300, check=True).stdout.split()[-1]
    assert run() == run()


def test_deterministic_flag_is_set_per_run(small_digits):
    from tensorflow.python.framework import config as tf_config

    train(TrainConfig(model="mlp", epochs=1, deterministic=True), small_digits)
    assert tf_config.is_op_determinism_enabled()
    train(TrainConfig(model="mlp", epochs=1), small_digits)
    assert not tf_config.is_op_determinism_enabled()
