"""The compression stage on a tiny trained model: each technique alone and combined.

Each fine-tune is 1 epoch on the 600-image digits subset; assertions are on real values
(sparsity per layer, unique values per kernel, sizes, load-back parity, int8 conversion)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgekit.artifacts import sha256_file
from edgekit.compress import CompressConfig, compress
from edgekit.compress.layers import iter_kernels

FAST = dict(epochs_per_stage=1, representative_samples=50)


def kernels(model) -> dict[str, np.ndarray]:
    return dict(iter_kernels(model))


@pytest.fixture
def guarded(trained_cnn):
    """The trained CNN and its file; asserts after the test that neither changed."""
    model, path = trained_cnn
    digest, weights = sha256_file(path), [w.copy() for w in model.get_weights()]
    yield model, path
    assert sha256_file(path) == digest, "the input model file was modified"
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights())), "input weights changed"


def test_prune_per_layer_targets_and_sizes(guarded, small_digits, tmp_path):
    _, path = guarded
    cfg = CompressConfig(prune=0.7, prune_layers={"dense1": 0.9}, skip_layers=("conv1", "output"),
                         prune_schedule="polynomial", **FAST)
    res = compress(path, small_digits, cfg, out=tmp_path / "p")
    k = kernels(res.model)
    for name, target in (("conv2", 0.7), ("conv3", 0.7), ("dense1", 0.9)):
        assert abs((k[name] == 0).mean() - target) <= 0.01, name
    assert (k["conv1"] == 0).mean() == 0 and (k["output"] == 0).mean() == 0
    inp, prune = res.metrics["stages"]
    assert prune["stage"] == "prune" and inp["stage"] == "input"
    # a pruned model only gets smaller once stripped and compressed
    assert prune["keras_gzip_bytes"] < 0.6 * inp["keras_gzip_bytes"]
    assert prune["tflite_int8_gzip_bytes"] < 0.6 * inp["tflite_int8_gzip_bytes"]
    assert prune["nonzero_params"] < 0.4 * inp["nonzero_params"]
    assert 0.6 < res.final["accuracy"] <= 1 and 0.6 < res.final["tflite_int8_accuracy"] <= 1
    layers = {r["layer"]: r for r in res.metrics["per_layer"]}
    assert layers["dense1"]["target_sparsity"] == 0.9 and layers["conv1"]["target_sparsity"] is None
    # the files: model, reports, manifest
    out = tmp_path / "p"
    report = json.loads((out / "compression.json").read_text())
    assert report["technique"] == "prune" and report["final"]["sparsity"] == pytest.approx(prune["sparsity"])
    md = (out / "compression.md").read_text()
    assert "| prune |" in md and ".tflite" in md and "gzip" in md
    man = json.loads((out / "manifest.json").read_text())
    assert man["stages"]["compress"]["metrics"]["final"]["stage"] == "prune"
    assert {a["path"] for a in man["artifacts"]} >= {"model.keras", "compression.json", "compression.md"}


def test_prune_names_filters_left_without_weights(trained_small, small_digits):
    """95% of a first conv's 9-weight filters: whole filters go, and the prune stage says which (the cause of a
    21-pt loss on a small Keras 3 CNN)."""
    said = []
    res = compress(trained_small[0], small_digits, CompressConfig(prune_layers={"conv1": 0.95}, **FAST),
                   progress=said.append)
    prune = res.metrics["stages"][1]
    layers = {r["layer"]: r for r in res.metrics["per_layer"]}
    n, channels = prune["emptied_channels"]["conv1"]
    assert n == layers["conv1"]["empty_channels"] >= 1 and channels == kernels(res.model)["conv1"].shape[-1]
    assert set(prune["emptied_channels"]) == {k for k, r in layers.items() if r["empty_channels"]}
    assert any(f"conv1 {n}/{channels}" in m and "--skip-layer" in m for m in said), said


def test_structured_2_of_4(trained_small, small_digits):
    model, _ = trained_small
    res = compress(model, small_digits, CompressConfig(prune_structure="2:4", **FAST))
    k = kernels(res.model)
    # conv1 sees a 1-channel image: no groups of 4 input channels, so it stays dense
    assert (k["conv1"] == 0).mean() == 0
    assert {r["layer"]: r["target_sparsity"] for r in res.metrics["per_layer"]} == {
        "conv1": None, "conv2": 0.5, "output": 0.5}
    for name in ("conv2", "output"):
        w = np.moveaxis(k[name], -2, -1)  # (..., out, in): groups run along the input channels
        groups = w.reshape(-1, w.shape[-1] // 4, 4)
        assert ((groups == 0).sum(-1) == 2).all(), name  # exactly 2 zeros in every 4
def test_cluster_only_unique_values(guarded, small_digits):
    model, _ = guarded
    cfg = CompressConfig(cluster=8, cluster_layers={"conv1": 4}, skip_layers=("output",), cluster_init="linear",
                         **FAST)
    res = compress(model, small_digits, cfg)
    k = kernels(res.model)
    assert len(np.unique(k["conv1"])) <= 4
    for name in ("conv2", "conv3", "dense1"):
        assert len(np.unique(k[name])) <= 8, name
    assert len(np.unique(k["output"])) > 100  # skipped
    st = res.metrics["stages"]
    assert st[-1]["stage"] == "cluster" and st[-1]["max_unique_values"] == len(np.unique(k["output"]))
    assert st[-1]["keras_gzip_bytes"] < st[0]["keras_gzip_bytes"]


INITS = {"kmeans++": "KMEANS_PLUS_PLUS", "linear": "LINEAR", "density": "DENSITY_BASED", "random": "RANDOM"}


@pytest.mark.parametrize("name", sorted(INITS))
def test_every_cluster_init_is_its_tfmot_initialisation(name):
    import tensorflow_model_optimization as tfmot

    from edgekit.compress.cluster import centroid_init
    from edgekit.compress.config import CLUSTER_INITS

    assert set(CLUSTER_INITS) == set(INITS)
    assert centroid_init(name) == getattr(tfmot.clustering.keras.CentroidInitialization, INITS[name])


def test_pcqat_keeps_sparsity_and_clusters_and_loads_back(guarded, small_digits, tmp_path):
    from edgekit.export.convert import to_tflite
    from edgekit.models import load_model

    _, path = guarded
    cfg = CompressConfig(prune=0.8, skip_layers=("conv1", "output"), cluster=8, quantize="qat", **FAST)
    res = compress(path, small_digits, cfg, out=tmp_path / "pcqat")
    stages = {s["stage"]: s for s in res.metrics["stages"]}
    assert list(stages) == ["input", "prune", "cluster", "quantize"] and stages["quantize"]["method"] == "PCQAT"
    # sparsity kept through clustering and QAT, shared values kept through QAT
    for s in ("prune", "cluster", "quantize"):
        assert abs(stages[s]["sparsity"] - stages["prune"]["sparsity"]) <= 0.01, s
    k = kernels(res.model)  # the QAT model's float kernels
    for name in ("conv2", "conv3", "dense1"):
        assert abs((k[name] == 0).mean() - 0.8) <= 0.01, name
        assert len(np.unique(k[name])) <= 8, name
    # the saved QAT model loads back with edgekit and predicts the same
    loaded = load_model(tmp_path / "pcqat" / "model.keras")
    assert type(loaded.layers[1]).__name__ == "QuantizeWrapperV2"
    x = small_digits.x_test[:32]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), res.model.predict(x, verbose=0), atol=1e-6)
    # and converts straight to a full-int8 .tflite of the size the report states
    tfl = to_tflite(loaded, "int8", small_digits.representative(50))
    assert len(tfl) == stages["quantize"]["tflite_int8_bytes"]
    assert stages["quantize"]["tflite_int8_gzip_bytes"] < 0.5 * stages["input"]["tflite_int8_gzip_bytes"]


def test_plain_qat_and_ptq(trained_small, small_digits, tmp_path):
    from edgekit.models import load_model

    model, _ = trained_small
    res = compress(model, small_digits, CompressConfig(quantize="qat", **FAST), out=tmp_path / "qat")
    q = res.metrics["stages"][-1]
    assert q["method"] == "QAT" and q["tflite_int8_accuracy"] > 0.6
    assert abs(q["tflite_int8_accuracy"] - q["accuracy"]) <= 0.05  # fake-quant matches the int8 file
    loaded = load_model(tmp_path / "qat" / "model.keras")
    x = small_digits.x_test[:16]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), res.model.predict(x, verbose=0), atol=1e-6)
    # a loaded QAT model saves and loads again (e.g. when a later stage re-saves it)
    from edgekit.models import save_model

    again = load_model(save_model(loaded, tmp_path / "again.keras"))
    np.testing.assert_allclose(again.predict(x, verbose=0), res.model.predict(x, verbose=0), atol=1e-6)
    ptq = compress(model, small_digits, CompressConfig(quantize="ptq", **FAST))
    assert ptq.metrics["stages"][-1]["method"].startswith("ptq") and ptq.technique == "PTQ"
    assert ptq.final["tflite_int8_bytes"] == ptq.metrics["input"]["tflite_int8_bytes"]


@pytest.mark.parametrize("kw, scheme", [(dict(prune=0.6), "PQAT"), (dict(cluster=6), "CQAT")])
def test_collaborative_qat_keeps_earlier_stage(trained_small, small_digits, kw, scheme):
    model, _ = trained_small
    res = compress(model, small_digits, CompressConfig(quantize="qat", **kw, **FAST))
    before, after = res.metrics["stages"][-2:]
    assert after["method"] == scheme
    for name, k in kernels(res.model).items():  # the QAT model's float kernels
        if "prune" in kw:
            assert abs((k == 0).mean() - 0.6) <= 0.01, name
        else:  # CQAT may refine conv centroids per output channel (int8 convs are per-channel)
            per_channel = max(len(np.unique(k[..., c])) for c in range(k.shape[-1]))
            assert per_channel <= 6 and (len(np.unique(k)) <= 6 or k.ndim == 4), name
    layers = {r["layer"]: r for r in res.metrics["per_layer"]}
    assert all(r["max_unique_per_channel"] <= (6 if "cluster" in kw else 10_000) for r in layers.values())
    assert after["sparsity"] == pytest.approx(before["sparsity"], abs=0.01)
    if "prune" in kw:
        assert after["nonzero_params"] <= before["nonzero_params"] + 200  # biases may move off zero
