import csv

import numpy as np
import pytest

from edgekit.errors import InputError
from edgekit.train import TrainConfig, evaluate, sweep


def test_evaluate_matches_keras_and_has_confusion(trained_cnn, digits):
    model, path = trained_cnn
    r = evaluate(path, digits, runs=5)
    cm = np.array(r["confusion_matrix"])
    assert cm.sum() == len(digits.y_test)
    assert np.trace(cm) / cm.sum() == pytest.approx(r["test_accuracy"])
    assert r["test_accuracy"] == pytest.approx((model.predict(digits.x_test, verbose=0).argmax(1) == digits.y_test).mean())
    assert r["latency_batch1"]["p50_ms"] > 0 and r["latency_batch1"]["p90_ms"] >= r["latency_batch1"]["p50_ms"]
    assert r["latency_batched"]["batch"] == 256


def test_evaluate_rejects_model_that_does_not_fit(trained_cnn):
    from edgekit.data import load_dataset

    import numpy as np
    rgb = load_dataset("digits")
    bad = rgb.__class__(*(np.repeat(a, 3, axis=-1) if a.ndim == 4 else a for a in
                          (rgb.x_train, rgb.y_train, rgb.x_val, rgb.y_val, rgb.x_test, rgb.y_test)),
                        info=rgb.info.__class__(**{**rgb.info.__dict__, "input_shape": (28, 28, 3)}))
    with pytest.raises(InputError, match="does not fit"):
        evaluate(trained_cnn[1], bad, runs=2)


def test_sweep_compares_runs(small_digits, tmp_path):
    rows = sweep(TrainConfig(epochs=2), small_digits, models=["mlp"], optimizers=["sgd", "adam"],
                 schedules=["constant"], target_accuracy=0.5, out=tmp_path / "sw")
    assert [r["run"] for r in rows] == ["mlp-sgd-constant", "mlp-adam-constant"]
    adam, sgd = rows[1], rows[0]
    assert adam["final_val_accuracy"] > sgd["final_val_accuracy"]  # adam learns faster in 2 epochs
    assert adam["epochs_to_target"] is not None and adam["seconds_to_target"] > 0
    with open(tmp_path / "sw" / "sweep.csv") as f:
        assert [r["run"] for r in csv.DictReader(f)] == ["mlp-sgd-constant", "mlp-adam-constant"]
    assert "| mlp-adam-constant |" in (tmp_path / "sw" / "sweep.md").read_text()
    assert (tmp_path / "sw" / "val_curves.png").stat().st_size > 1000
    assert (tmp_path / "sw" / "mlp-adam-constant" / "model.keras").is_file()
