"""Ratios say what they divide (raw/raw, gzip/gzip, vs float32 and vs the reference int8) and the
markdown report shows the deployment figures; deploy_figures measures a real int8 .tflite."""
from __future__ import annotations

import pytest

from edgekit.compress.config import CompressConfig
from edgekit.compress.metrics import deploy_figures, ratios
from edgekit.compress.report import to_markdown

INPUT = {"accuracy": 0.98, "tflite_float32_bytes": 400_000, "tflite_float32_gzip_bytes": 360_000,
         "tflite_int8_bytes": 100_000, "tflite_int8_gzip_bytes": 90_000, "litert_us": 30.0, "tflm_us": 3000.0,
         "tflm_arena_bytes": 32_000}
FINAL = {"stage": "quantize", "accuracy": 0.976, "accuracy_drop_pt": 0.4, "tflite_int8_accuracy": 0.975,
         "sparsity": 0.8, "nonzero_params": 2_000, "max_unique_values": 16, "keras_bytes": 1, "keras_gzip_bytes": 1,
         "tflite_int8_bytes": 10_000, "tflite_int8_gzip_bytes": 6_000, "params": 10_000, "macs": 50_000,
         "bits_per_param": 8.0, "gzip_bits_per_param": 4.8, "tflm_arena_bytes": 8_000, "litert_us": 10.0,
         "litert_best_us": 9.0, "tflm_us": 1000.0, "tflm_best_us": 900.0, "seconds": 1.0, "left_dense": ["dw"]}


def test_ratios_divide_like_by_like():
    r = ratios(INPUT, FINAL)
    assert r["tflite_int8_vs_input_float32"] == pytest.approx(40.0)  # raw / raw
    assert r["tflite_int8_gzip_vs_input_float32_gzip"] == pytest.approx(60.0)  # gzip / gzip
    assert r["tflite_int8_vs_input_int8"] == pytest.approx(10.0)
    assert r["tflite_int8_gzip_vs_input_int8_gzip"] == pytest.approx(15.0)
    assert r["litert_speedup_vs_input_int8"] == pytest.approx(3.0)
    assert r["tflm_speedup_vs_input_int8"] == pytest.approx(3.0)
    assert r["tflm_arena_vs_input_int8"] == pytest.approx(4.0)
    assert ratios(INPUT, {**FINAL, "tflm_us": None})["tflm_speedup_vs_input_int8"] is None


def test_markdown_has_the_figures_and_a_ratios_line():
    metrics = {"input": INPUT, "final": FINAL, "stages": [FINAL], "per_layer": [], "ratios": ratios(INPUT, FINAL)}
    md = to_markdown(metrics, CompressConfig(prune=0.8, cluster=16, quantize="qat"))
    assert "raw/raw 40.0x, gzip/gzip 60.0x" in md and "raw/raw 10.0x, gzip/gzip 15.0x" in md
    assert "| 8.00 / 4.80 | 8,000 | 10.0 / 9.0 | 1000 / 900 |" in md
    assert "left dense (tfmot prunes none of their weights): dw" in md


def test_deploy_figures_on_a_real_int8_tflite(trained_small, small_digits):
    from edgekit.compress.metrics import tflite_bytes

    model, _ = trained_small
    fb = tflite_bytes(model, small_digits, "int8", 20)
    f = deploy_figures(fb, small_digits, int(model.count_params()), litert_runs=5, tflm_runs=2)
    assert f["bits_per_param"] == pytest.approx(len(fb) * 8 / model.count_params())
    assert f["gzip_bits_per_param"] < f["bits_per_param"]
    assert f["tflm_arena_bytes"] > 0 and f["litert_us"] > 0 and f["tflm_us"] > 0 and f["tflm_best_us"] > 0


def test_filters_left_without_weights_are_counted_and_reported():
    """80% pruning of a 144-weight first conv left whole filters empty (-21 pt on a Keras 3 CNN): say so."""
    import numpy as np

    from edgekit.compress.metrics import empty_channels

    k = np.ones((3, 3, 1, 4), np.float32)
    k[..., 1] = 0
    k[0, 0, 0, 3] = 0  # a partly pruned filter is not empty
    assert empty_channels(k) == 1
    assert empty_channels(np.zeros((32, 10))) == 10 and empty_channels(np.ones((32, 10))) == 0
    prune_row = {**FINAL, "stage": "prune", "emptied_channels": {"conv1": [5, 16]}}
    metrics = {"input": INPUT, "final": FINAL, "stages": [prune_row, FINAL], "per_layer": [],
               "ratios": ratios(INPUT, FINAL)}
    md = to_markdown(metrics, CompressConfig(prune=0.8))
    assert "- prune: output channels left without any weight (they only pass their bias on): conv1 5/16" in md


def test_per_layer_and_the_prune_stage_name_emptied_filters(trained_small):
    from edgekit.compress.layers import clone
    from edgekit.compress.metrics import emptied_channels, per_layer

    model = clone(trained_small[0])
    conv = next(l for l in model.layers if type(l).__name__ == "Conv2D")
    w = conv.get_weights()
    w[0][..., :2] = 0
    conv.set_weights(w)
    rows = {r["layer"]: r for r in per_layer(model)}
    assert rows[conv.name]["empty_channels"] == 2
    assert all(r["empty_channels"] == 0 for n, r in rows.items() if n != conv.name)
    assert emptied_channels(model) == {conv.name: [2, int(w[0].shape[-1])]}
