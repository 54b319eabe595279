"""Transfer learning from a pretrained backbone (edgekit/models/backbones.py, edgekit/train/transfer.py).

The "pretrained" MobileNetV2 (alpha 0.35) is the committed fixture tests/fixtures/mobilenet_v2_035_mnist.h5:
trained on MNIST (10k images, 96.3% holdout) by benchmarks/make_transfer_fixture.py, its backbone saved in
float16 (1.2 MB). The target is small and shifted: scikit-learn's 8x8 digits upscaled to 28x28 (the same
classes in another writing style and resolution; the MNIST model gets 65% of them as they are), 30
images per class (240 train / 60 val), 500 others as the holdout. Nothing is downloaded: the ImageNet
tests point the Keras cache at an empty folder and make the network fail. The long version, with
three seeds and more sizes, is benchmarks/transfer.py.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgekit.cli.main import cli
from edgekit.errors import InputError, UsageError
from edgekit.models import backbones, build_model
from edgekit.train import TrainConfig, train

MODEL = "mobilenet-v2"
FILE_224 = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mobilenet_v2_035_mnist.h5"
PER_CLASS, HOLDOUT = 30, 500
# the benchmark's settings: same 13 epochs, batch size 10 and cosine schedule for both
COMMON = dict(model=MODEL, batch_size=10, schedule="cosine", seed=0)
TRANSFER = dict(pretrained=str(FIXTURE), freeze_backbone=True, epochs=3, lr=0.01,
                fine_tune_from="expanded_conv_depthwise", fine_tune_lr=0.001, fine_tune_epochs=10)


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    """(dataset, npz path): scikit-learn digits, PER_CLASS training images per class, HOLDOUT others to test."""
    from edgekit.data import load_dataset
    from edgekit.data.sources import digits

    x, y = digits()["all"]
    rng = np.random.default_rng(0)
    tr = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[:PER_CLASS] for c in range(10)]))
    te = np.sort(rng.permutation(np.setdiff1d(np.arange(len(y)), tr))[:HOLDOUT])
    path = tmp_path_factory.mktemp("target") / "b.npz"
    np.savez(path, x_train=x[tr], y_train=y[tr], x_test=x[te], y_test=y[te])
    return load_dataset(f"npz:{path}", val_split=0.2), path


@pytest.fixture(scope="module")
def pretrained():
    """The committed MNIST backbone, checked against the record the script wrote beside it."""
    info = json.loads(FIXTURE.with_suffix(".json").read_text())
    assert hashlib.sha256(FIXTURE.read_bytes()).hexdigest() == info["sha256"], "re-run make_transfer_fixture.py"
    return FIXTURE, info


def _backbone(model):
    return {l.name: [w.numpy().copy() for w in l.weights] for l in backbones.weighted_backbone_layers(model)}


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def test_loading_by_path_gives_identical_backbone_weights(pretrained, tmp_path, monkeypatch):
    path, info = pretrained
    assert info["mnist_holdout_accuracy"] > 0.95  # the source task was learned: the features are worth transferring
    fresh = build_model(MODEL, (28, 28, 1), 5)
    loaded = backbones.load_pretrained(fresh, MODEL, {}, path)
    assert loaded["matched_by"] == "name" and loaded["layers"] == len(backbones.weighted_backbone_layers(fresh)) == 104
    stored = dict(backbones._read_h5(path))  # float16 in the file, the same values in float32 in the model
    assert stored.keys() == _backbone(fresh).keys() and stored["Conv1"][0].dtype == np.float16
    for name, ws in stored.items():
        assert _same([w.astype(np.float32) for w in ws], [v.numpy() for v in
                                                          backbones._ordered_weights(fresh.get_layer(name))]), name
    got = _backbone(fresh)
    # a model's own backbone saved and loaded again is bit-identical (float32 file)
    again = backbones.save_backbone_weights(fresh, MODEL, tmp_path / "again.h5")
    other = build_model(MODEL, (28, 28, 1), 5)
    backbones.load_pretrained(other, MODEL, {}, again)
    assert all(_same(got[k], _backbone(other)[k]) for k in got)
    assert not _same(fresh.get_layer("output").get_weights(), other.get_layer("output").get_weights())
    # Keras' cached ImageNet file is found by its exact name, without any network
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    (tmp_path / ".keras" / "models").mkdir(parents=True)
    (tmp_path / ".keras" / "models" / FILE_224).write_bytes(path.read_bytes())
    found = backbones.resolve_pretrained(MODEL, {}, "imagenet", (28, 28, 1))
    assert found == tmp_path / ".keras" / "models" / FILE_224


@pytest.mark.parametrize("name, options, file", [
    ("mobilenet-v2", {"alpha": 1.0}, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5"),
    ("mobilenet-v3-small", {}, "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"),
    ("efficientnet-b0", {}, "efficientnetb0_notop.h5"),
    ("resnet50", {}, "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
])
def test_every_backbone_builds_flat_and_names_its_keras_file(name, options, file):
    shape = (96, 96, 3) if name == "mobilenet-v2" else (32, 32, 3)
    assert backbones.imagenet_file(name, options, shape)[0] == file
    if name == "resnet50":  # 23.6 M parameters: the name is enough here
        return
    m = build_model(name, (32, 32, 1), 4, **options)
    assert m.layers[1].name == "to_rgb" and m.layers[-1].name == "output" and m.output_shape == (None, 4)
    assert not any(hasattr(l, "layers") for l in m.layers)  # flat: QAT and the exporters see every layer


def test_freeze_backbone_trains_only_the_head(pretrained, target):
    path, _ = pretrained
    res = train(TrainConfig(model=MODEL, pretrained=str(path), freeze_backbone=True, epochs=1, batch_size=8),
                target[0])
    fresh = build_model(MODEL, (28, 28, 1), 10)
    backbones.load_pretrained(fresh, MODEL, {}, path)
    want, got = _backbone(fresh), _backbone(res.model)
    assert all(_same(want[k], got[k]) for k in want)  # BatchNorm moving statistics included
    assert not _same(fresh.get_layer("output").get_weights(), res.model.get_layer("output").get_weights())
    assert [r["phase"] for r in res.history] == ["head"]
    assert res.transfer["phases"][0]["trainable_params"] == 1280 * 10 + 10


@pytest.fixture(scope="module")
def two_phase(pretrained, target, tmp_path_factory):
    """Head 3 epochs on the frozen backbone, then 10 epochs from expanded_conv_depthwise (all but the stem)."""
    out = tmp_path_factory.mktemp("two_phase") / "run"
    t0 = time.perf_counter()
    res = train(TrainConfig(**COMMON, **TRANSFER), target[0], out=out)
    return res, out, time.perf_counter() - t0


def test_fine_tune_from_unfreezes_only_later_layers_and_keeps_batchnorm(pretrained, two_phase):
    res, out, _ = two_phase
    fresh = build_model(MODEL, (28, 28, 1), 10)
    backbones.load_pretrained(fresh, MODEL, {}, pretrained[0])
    names = [l.name for l in res.model.layers]
    start = names.index("expanded_conv_depthwise")
    want, got = _backbone(fresh), _backbone(res.model)
    assert any(names.index(n) < start and type(res.model.get_layer(n)).__name__ == "Conv2D" for n in want)
    for name in want:
        layer = res.model.get_layer(name)
        if type(layer).__name__ == "BatchNormalization" or names.index(name) < start:
            assert _same(want[name], got[name]), name
        else:
            assert not _same(want[name], got[name]), name
    assert [r["phase"] for r in res.history] == ["head"] * 3 + ["fine-tune"] * 10
    assert [r["epoch"] for r in res.history] == list(range(1, 14))
    man = json.loads((out / "manifest.json").read_text())
    phases = man["stages"]["train"]["transfer"]["phases"]
    assert [p["phase"] for p in phases] == ["head", "fine-tune"] and phases[1]["from_layer"] == "expanded_conv_depthwise"
    assert phases[1]["lr"] == 0.001 and man["dataset"]["preprocess"] == "symmetric"
    assert not (out / "backup").exists()


def test_transfer_beats_scratch(two_phase, target):
    """The headline: 30 images per class of the shifted digits, same 13 epochs (312 steps), batch size and
    schedule. Measured (benchmarks/transfer.py, seed 0): transfer 0.944, scratch 0.728."""
    res, _, _ = two_phase
    scratch = train(TrainConfig(**COMMON, epochs=13, lr=0.003), target[0])
    assert res.test_accuracy >= 0.90, res.test_accuracy
    assert res.test_accuracy >= scratch.test_accuracy + 0.12, (res.test_accuracy, scratch.test_accuracy)


def test_transfer_model_int8_export_validates(two_phase, target, tmp_path):
    """tflite-int8 (calibrated on the training split) of the transfer model, which has learned its task
    (>= 90%), agrees with Keras on >= 98% of the 500 holdout images (measured 99.2%)."""
    from edgekit.data import load_dataset
    from edgekit.validate import ValidateConfig
    from edgekit.validate.step import export_and_validate

    res, out, _ = two_phase
    data = load_dataset(f"npz:{target[1]}", val_split=0.2, preprocess="symmetric")
    v = export_and_validate(out / "model.keras", data, ["tflite-int8"], tmp_path / "export",
                            validate_config=ValidateConfig(min_agreement=1)).validation
    t = v.targets["tflite-int8"]
    assert res.test_accuracy >= 0.90 and t["accuracy"] >= 0.90, (res.test_accuracy, t["accuracy"])
    assert t["agreement_pct"] >= 98.0, t


def _run(*args):
    return CliRunner().invoke(cli, list(args))


def test_offline_imagenet_is_one_line_naming_the_file(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_HOME", raising=False)

    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    t0 = time.perf_counter()
    r = _run("train", "--model", MODEL, "--pretrained", "imagenet", "--limit", "100", "--quiet",
             "--out", str(tmp_path / "run"))
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and FILE_224 in lines[0] and ".keras/models" in lines[0], r.output
    assert time.perf_counter() - t0 < 20 and not (tmp_path / "run").exists()


def test_a_download_that_does_not_answer_times_out(tmp_path, monkeypatch):
    import urllib.request

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: time.sleep(5))
    t0 = time.perf_counter()
    with pytest.raises(TimeoutError, match="no answer"):
        backbones._download("https://example.invalid/x.h5", tmp_path / "x.h5", timeout=0.3)
    assert time.perf_counter() - t0 < 2 and not (tmp_path / "x.h5").exists()


def test_a_weights_file_of_another_width_is_one_line(pretrained, tmp_path):
    r = _run("train", "--model", MODEL, "--model-option", "alpha=0.5", "--pretrained", str(pretrained[0]),
             "--limit", "100", "--quiet", "--out", str(tmp_path / "run"))
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "does not fit mobilenet-v2 alpha 0.5" in lines[0] and "block_1_project" in lines[0]
    other = build_model("mobilenet-v3-small", (32, 32, 3), 2)
    with pytest.raises(InputError, match="another backbone"):
        backbones.load_pretrained(other, "mobilenet-v3-small", {}, pretrained[0])


@pytest.mark.parametrize("kw, match", [
    ({"model": "cnn", "pretrained": "imagenet"}, "has no pretrained weights"),
    ({"model": MODEL, "freeze_backbone": True}, "needs pretrained weights"),
    ({"model": MODEL, "pretrained": "imagenet", "fine_tune_from": "block_13_expand"}, "add --freeze-backbone"),
    ({"model": MODEL, "pretrained": "imagenet", "fine_tune_lr": 0.001}, "needs fine_tune_from"),
    ({"model": MODEL, "pretrained": "imagenet", "model_options": {"alpha": 0.25}}, "alpha 0.35, 0.5"),
    ({"model": "mobilenet-v3-small", "pretrained": "imagenet", "model_options": {"alpha": 0.5}}, "0.75, 1.0"),
    ({"model": "efficientnet-b0", "model_options": {"dropout": 1.5}}, "dropout"),
])
def test_transfer_options_are_checked(kw, match):
    with pytest.raises(UsageError, match=match):
        TrainConfig(**kw)


def test_config_hash_of_other_runs_is_unchanged_and_layers_resolve():
    assert "pretrained" not in TrainConfig().to_dict()
    m = build_model(MODEL, (32, 32, 3), 2)
    assert backbones.resolve_layer(m, "block_13_expand") == backbones.resolve_layer(m, "%d" % [
        l.name for l in m.layers].index("block_13_expand"))
    with pytest.raises(UsageError, match="not a backbone layer"):
        backbones.resolve_layer(m, "output")
    with pytest.raises(UsageError, match='Did you mean "block_13_expand"'):
        backbones.resolve_layer(m, "block_13_expnd")


def test_two_phase_runs_refuse_resume(tmp_path):
    r = _run("train", "--model", MODEL, "--pretrained", "imagenet", "--freeze-backbone", "--fine-tune-from", "100",
             "--resume", "--out", str(tmp_path / "run"))
    assert r.exit_code == 2 and "cannot be resumed" in r.output


def test_recipe_reads_backbone_pixels_and_resolves_the_weights_path(tmp_path):
    import yaml

    from edgekit.recipe import load_recipe

    (tmp_path / "w.h5").write_bytes(b"")
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump({"model": {"name": MODEL}, "train": {
        "pretrained": "w.h5", "freeze_backbone": True, "fine_tune_from": "block_13_expand"}}))
    r = load_recipe(p)
    assert r.data.preprocess == "symmetric" and r.train.pretrained == str(tmp_path / "w.h5")
    p.write_text(yaml.safe_dump({"model": {"name": MODEL}, "train": {"pretrained": "imagenet"},
                                 "data": {"preprocess": "imagenet"}}))
    with pytest.raises(UsageError, match="data.preprocess: .*expect pixels \\[-1, 1\\]"):
        load_recipe(p)
    p.write_text(yaml.safe_dump({"model": {"name": MODEL}, "train": {"pretrained": "imagenet"}}))
    assert load_recipe(p).train.pretrained == "imagenet"
