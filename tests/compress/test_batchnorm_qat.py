"""QAT on BatchNorm models (Conv/DepthwiseConv + BN + ReLU, residual Add, Concatenate): the
pre-check asks tfmot, and the collaborative schemes keep zeros and shared values through the
BatchNorm fold into the exported int8 kernels."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.compress import quantize as Q
from edgekit.compress.layers import clone, kernel_of
from edgekit.compress.metrics import int8_kernels
from edgekit.errors import UsageError
from edgekit.export.convert import to_tflite
from edgekit.models import build_model

CLUSTERS = 6


@pytest.mark.parametrize("name", ["resnet8", "mobilenet-v1", "ds-cnn"])
def test_precheck_accepts_what_tfmot_folds(name):
    Q.check_quantizable(build_model(name, (16, 16, 3), 4))  # BatchNorm after conv, Add: no error


def test_precheck_accepts_concatenate_and_names_what_tfmot_refuses():
    from edgekit._lazy import keras

    k = keras()
    L = k.layers
    i = k.Input((8, 8, 3))
    a = L.BatchNormalization(name="a_bn")(L.Conv2D(4, 3, name="a")(i))
    x = L.Concatenate(name="cat")([L.ReLU()(a), L.DepthwiseConv2D(3, name="b")(i)])
    Q.check_quantizable(k.Model(i, L.Dense(2)(L.Flatten()(x))))
    i = k.Input((8, 8, 3))
    x = L.LayerNormalization(name="ln")(L.Conv2D(4, 3)(i))
    with pytest.raises(UsageError) as e:
        Q.check_quantizable(k.Model(i, L.Dense(2)(L.Flatten()(x))))
    assert str(e.value) == ("Quantization-aware training cannot quantize layer ln (LayerNormalization): tfmot's "
                            "default 8-bit scheme does not support that type. Use --quantize ptq (post-training) "
                            "instead.")
    i = k.Input((8, 8, 3))
    x = L.BatchNormalization(name="lonely_bn")(i)  # no conv to fold into
    with pytest.raises(UsageError, match=r"cannot quantize layer lonely_bn \(BatchNormalization\)"):
        Q.check_quantizable(k.Model(i, L.Dense(2)(L.Flatten()(x))))


def _pruned_and_clustered(model, prune: bool, cluster: bool):
    """Every conv/dense kernel with half its weights zero and/or CLUSTERS shared values (the
    collaborative schemes preserve whatever the weights hold, however it was made)."""
    rng = np.random.default_rng(0)
    m = clone(model)
    for layer in m.layers:
        k = kernel_of(layer)
        if k is None:
            continue
        w = k.numpy()
        if cluster:
            levels = np.linspace(w.min(), w.max(), CLUSTERS - (1 if prune else 0))
            w = levels[np.abs(w[..., None] - levels).argmin(-1)]
        if prune:
            w = np.where(rng.permutation(w.size).reshape(w.shape) < w.size // 2, 0.0, w)  # exactly half
        k.assign(w.astype(np.float32))
    return m


@pytest.mark.parametrize("prune, cluster", [(False, False), (True, False), (False, True), (True, True)],
                         ids=["QAT", "PQAT", "CQAT", "PCQAT"])
def test_schemes_keep_sparsity_and_clusters_through_the_fold(prune, cluster):
    from edgekit.compress.metrics import per_layer

    rng = np.random.default_rng(1)
    x = rng.random((64, 16, 16, 3), np.float32)
    y = rng.integers(0, 4, 64)
    model = _pruned_and_clustered(build_model("resnet8", (16, 16, 3), 4), prune, cluster)
    qat = Q.apply_qat(model, prune, cluster)
    qat.compile("adam", "sparse_categorical_crossentropy")
    qat.fit(x, y, batch_size=32, epochs=1, verbose=0)  # moves BN statistics and the float weights
    deploy, plain = Q.finish_qat(qat, model, cluster)
    floats = {r["layer"]: r for r in per_layer(plain)}
    flatbuffer = to_tflite(deploy, "int8", x[:16])
    rows = int8_kernels(flatbuffer)
    assert len(rows) == 10  # 9 convs (BN folded in) + the classifier
    for r in rows:
        if prune:  # zeros survive fine-tuning and the fold (a per-channel scale keeps 0 at 0)
            assert r["sparsity"] >= 0.5, r
        if cluster:  # one output channel holds at most CLUSTERS int8 values after the fold
            assert r["max_unique_per_channel"] <= CLUSTERS, r
        if not (prune or cluster):
            assert r["sparsity"] < 0.1 and r["max_unique_per_channel"] > CLUSTERS
    if prune:
        assert min(f["sparsity"] for f in floats.values()) >= 0.5
    # the int8 model computes what the QAT model computes
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=flatbuffer)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    scale, zero = inp["quantization"]
    interp.resize_tensor_input(inp["index"], [64, 16, 16, 3])
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8))
    interp.invoke()
    o_scale, o_zero = out["quantization"]
    probs = (interp.get_tensor(out["index"]).astype(np.float32) - o_zero) * o_scale
    # random data, untrained: classes nearly tie, so compare probabilities, not argmax
    diff = np.abs(probs - deploy.predict(x, verbose=0)).max()
    assert diff <= 0.05, diff


def test_qat_ranges_start_at_the_calibrated_float_ranges():
    from edgekit._lazy import keras

    rng = np.random.default_rng(2)
    x = rng.random((32, 16, 16, 3), np.float32)
    model = build_model("ds-cnn", (16, 16, 3), 4)  # conv+relu (post_activation), Dense softmax (pre_activation)
    plain = Q.apply_qat(model, False, False)
    ranges = {(w.layer.name, Q._var_key(v, w)): float(v.numpy().max()) for w in plain.layers
              if hasattr(w, "layer") for v in w.weights if Q._var_key(v, w).endswith("activation_max")}
    assert ranges and set(ranges.values()) == {6.0}  # tfmot's start, moved by 0.1% per training step
    qat = Q.apply_qat(model, False, False, calibration=x)
    found = {(w.layer.name, Q._var_key(v, w)): float(v.numpy().reshape(-1)[0]) for w in qat.layers
             if hasattr(w, "layer") for v in w.weights}
    relu = keras().Model(model.inputs, model.get_layer("conv1").output).predict(x, verbose=0)
    assert found[("conv1", "post_activation_min")] == 0.0
    assert found[("conv1", "post_activation_max")] == pytest.approx(float(relu.max()), rel=1e-5)
    out = model.get_layer("output")
    feats = keras().Model(model.inputs, out.input).predict(x, verbose=0)
    logits = feats @ out.kernel.numpy() + out.bias.numpy()
    assert found[("output", "pre_activation_min")] == pytest.approx(min(float(logits.min()), 0.0), rel=1e-4, abs=1e-6)
    assert found[("output", "pre_activation_max")] == pytest.approx(max(float(logits.max()), 0.0), rel=1e-4, abs=1e-6)
    assert Q.calibrate_ranges(qat, model, x) == len(ranges)
