"""BatchNorm adaptation: re-estimate every BatchNormalization layer's moving mean and variance from
training images after a compression stage changed the weights before it (NNCF does the same by default).

keras.applications models use a BatchNorm momentum of 0.99-0.999: a fine-tune of a few hundred steps
moves their moving statistics by a fraction of the way, so the model evaluated in inference mode
normalises with statistics of the weights it had before (MobileNetV2 at prune 0.5 + QAT: 15.9% instead
of 94.4%). Here each layer's statistics become the plain average over the batches, whatever its
momentum: the k-th batch is weighted 1/(k+1). Not after QAT: the int8 converter folds BatchNorm into
the conv kernels, whose learned fake-quant ranges fit the statistics QAT ran with.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

BATCH = 64
MAX_IMAGES = 2048  # 32 batches: the averaged statistics settle well before


def batchnorm_layers(model: Any) -> list[Any]:
    """The BatchNormalization layers of a tf_keras model, also inside tfmot wrappers and sub-models."""
    from edgekit._lazy import keras

    k = keras()
    found: list[Any] = []

    def walk(layer: Any) -> None:
        if isinstance(layer, k.layers.BatchNormalization):
            found.append(layer)
        inner = getattr(layer, "layer", None)  # QuantizeWrapper / PruneLowMagnitude / ClusterWeights
        if inner is not None:
            walk(inner)
        for sub in getattr(layer, "layers", []):  # a nested model
            walk(sub)

    for layer in model.layers:
        walk(layer)
    return found


def _batches(x: Any, seed: int) -> Iterator[np.ndarray]:
    """float32 batches of a fixed random sample of at most :data:`MAX_IMAGES` images of ``x``; a
    split (:class:`~edgekit.data.store.Images`) reads only the images of each batch."""
    idx = np.random.default_rng(seed).permutation(len(x))[:MAX_IMAGES]
    for i in range(0, len(idx), BATCH):
        chunk = np.sort(idx[i : i + BATCH])
        if len(chunk) > 1:  # a batch of one has no variance
            yield np.asarray(x[chunk], dtype=np.float32)


def adapt_batchnorm(model: Any, x: Any, seed: int = 0) -> int:
    """Re-estimate the moving statistics of ``model``'s BatchNormalization layers on images ``x``
    (float32 NHWC, the training split: an array or :class:`~edgekit.data.store.Images`), a fixed
    random sample of at most :data:`MAX_IMAGES` read a batch at a time; returns how many layers
    were updated. Only the statistics change: weights, pruning masks and clusters are left as they are."""
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    from edgekit._lazy import tf

    saved = [(layer, layer.momentum) for layer in layers]
    try:
        for k, batch in enumerate(_batches(x, seed)):
            for layer in layers:
                layer.momentum = k / (k + 1.0)  # moving = moving * k/(k+1) + batch / (k+1): the running mean
            model(tf().constant(batch), training=True)
    finally:
        for layer, momentum in saved:
            layer.momentum = momentum
    return len(layers)
