"""Sparsity-preserving clustering after a hard prune: tfmot's k-means++ needs as many non-zero
weights as centroids on each side of zero, or it fails with a TensorFlow error. edgekit gives such
a layer fewer clusters (or none) and says so, instead of crashing mid-compression."""
from __future__ import annotations

import numpy as np

from edgekit.compress import CompressConfig, compress
from edgekit.compress.cluster import sparse_fit


def test_sparse_fit_follows_tfmots_split_between_signs():
    w = np.zeros(36)
    w[:3], w[3] = [0.5, 0.2, 0.1], -0.3  # 3 positive, 1 negative, 32 zeros
    # k=8: 7 non-zero centroids, round(7/4) = 2 negative > 1 weight; k=7: round(6/4) = 2 (half to even,
    # as tf.math.round); k=6: 1 negative but 4 positive > 3; k=5: 1 negative, 3 positive: fits
    assert sparse_fit(w, 8) == 5
    assert sparse_fit(w, 3) == 3
    assert sparse_fit(np.zeros(9), 4) == 0  # nothing but zeros: no cluster fits
    dense = np.linspace(-1, 1, 100)
    assert sparse_fit(dense, 16) == 16


def test_a_layer_pruned_below_its_cluster_count_gets_fewer_clusters(small_digits):
    from edgekit._lazy import keras

    k = keras()
    inp = k.Input(small_digits.info.input_shape)
    x = k.layers.Conv2D(4, 3, activation="relu", name="tiny")(inp)  # 36 weights: 90% pruning leaves ~4
    x = k.layers.GlobalAveragePooling2D()(x)
    model = k.Model(inp, k.layers.Dense(small_digits.info.num_classes, activation="softmax", name="out")(x))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    said: list[str] = []
    res = compress(model, small_digits, CompressConfig(prune=0.9, cluster=8, epochs_per_stage=1, batch_size=64),
                   progress=said.append, measure=False)
    stage = next(s for s in res.metrics["stages"] if s["stage"] == "cluster")
    refit = stage["clusters_refit"]
    assert "tiny" in refit and "8 ->" in refit["tiny"] and "non-zero weights" in refit["tiny"]
    assert any("fewer clusters than asked" in m and "tiny 8 ->" in m for m in said)
    kernel = next(l for l in res.model.layers if l.name == "tiny").kernel.numpy()
    assert len(np.unique(kernel[kernel != 0])) < 8  # the layer holds what fitted, not 8 values
