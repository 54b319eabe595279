"""Knowledge distillation: the loss is the formula, it really uses the teacher, and a wrong
teacher or weight is one line (exit 2 through the CLI)."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import UsageError


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _reference(labels, zs, zt, alpha, T):
    ce = -np.log(_softmax(zs)[np.arange(len(labels)), labels])
    pt, ps = _softmax(zt / T), _softmax(zs / T)
    kl = (pt * (np.log(pt) - np.log(ps))).sum(-1)
    return alpha * ce + (1 - alpha) * T * T * kl


@pytest.mark.parametrize("alpha, T", [(0.5, 4.0), (0.0, 2.0), (1.0, 1.0), (0.3, 10.0)])
def test_loss_is_the_formula_from_probabilities_and_logits(alpha, T):
    import edgekit  # noqa: F401
    from edgekit._lazy import tf
    from edgekit.train.distill import distill_loss

    rng = np.random.default_rng(0)
    zs, zt = rng.normal(0, 5, (6, 10)), rng.normal(0, 5, (6, 10))
    labels = rng.integers(0, 10, 6)
    want = _reference(labels, zs, zt, alpha, T)
    # teacher targets are log-probabilities: logits shifted per image
    log_pt = zt - np.log(np.exp(zt).sum(-1, keepdims=True))
    y = tf().constant(np.concatenate([labels[:, None], log_pt], 1), tf().float32)
    from_probs = distill_loss(alpha, T, True)(y, tf().constant(_softmax(zs), tf().float32)).numpy()
    from_logits = distill_loss(alpha, T, False)(y, tf().constant(zs, tf().float32)).numpy()
    np.testing.assert_allclose(from_probs, want, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(from_logits, want, rtol=2e-4, atol=2e-5)


def _rolled_teacher(model, path):
    """A teacher that answers class (c + 1) % K where ``model`` answers c: a different function than the labels."""
    from edgekit.compress.layers import clone
    from edgekit.models import save_model

    t = clone(model)
    k, b = t.get_layer("output").get_weights()
    t.get_layer("output").set_weights([np.roll(k, 1, axis=1), np.roll(b, 1)])
    save_model(t, path)
    return t


def test_student_learns_the_teacher_not_the_labels(trained_cnn, digits, tmp_path):
    from edgekit.train import TrainConfig, train

    teacher = _rolled_teacher(trained_cnn[0], tmp_path / "teacher.keras")
    t_pred = teacher.predict(digits.x_test, verbose=0).argmax(1)
    assert (t_pred == digits.y_test).mean() < 0.1  # the teacher disagrees with the labels
    runs = {}
    for alpha in (0.0, 1.0):
        cfg = TrainConfig(model="cnn-small", epochs=4, lr=0.003, seed=0, teacher=str(tmp_path / "teacher.keras"),
                          distill_alpha=alpha, temperature=2.0)
        pred = train(cfg, digits).model.predict(digits.x_test, verbose=0).argmax(1)
        runs[alpha] = ((pred == t_pred).mean(), (pred == digits.y_test).mean())
    agree_teacher, agree_labels = runs[0.0]
    assert agree_teacher > 0.6 and agree_teacher > agree_labels + 0.4, runs
    assert runs[1.0][1] > runs[1.0][0] + 0.4, runs  # alpha = 1: labels only


def test_per_batch_targets_equal_precomputed(trained_cnn, small_digits):
    from edgekit._lazy import tf
    from edgekit.train.distill import Distillation

    d = Distillation(trained_cnn[0], 0.5, 4.0)
    packed = d.packed(small_digits)
    assert packed is d.packed(small_digits)  # computed once per dataset
    x, y = small_digits.x_train[:20], small_digits.y_train[:20]
    (_, got), = list(d.batch_map(tf().data.Dataset.from_tensors((x, y))).as_numpy_iterator())
    np.testing.assert_array_equal(got[:, 0], y)
    np.testing.assert_allclose(got[:, 1:], packed.y_train[:20, 1:], atol=1e-4)
    np.testing.assert_array_equal(packed.y_train[:, 0], small_digits.y_train)


def test_bad_distill_settings():
    from edgekit.train import TrainConfig

    for kw, words in (({"distill_alpha": 1.5}, "[0, 1]"), ({"temperature": 0.5}, ">= 1")):
        with pytest.raises(UsageError, match=words.replace("[", r"\[").replace("]", r"\]")):
            TrainConfig(teacher="t.keras", **kw)


def test_cli_teacher_with_other_outputs_exit_2(tmp_path):
    from click.testing import CliRunner

    from edgekit.cli.main import cli
    from edgekit.models import build_model, save_model

    save_model(build_model("cnn-small", (28, 28, 1), 5), tmp_path / "five.keras")
    out = tmp_path / "o"
    r = CliRunner().invoke(cli, ["train", "--model", "cnn-small", "--epochs", "1", "--limit", "600",
                                 "--teacher", str(tmp_path / "five.keras"), "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert "teacher must output" in r.stderr and "(10,)" in r.stderr and "(5,)" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()
    r = CliRunner().invoke(cli, ["train", "--teacher", str(tmp_path / "five.keras"), "--distill-alpha", "-1",
                                 "--out", str(out)])
    assert r.exit_code == 2 and "distill_alpha" in r.stderr
