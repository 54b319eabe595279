"""Training-time data augmentation: small random shifts, rotations and zooms of the images.

Applied in the input pipeline, never inside the model, so exported artifacts are unchanged.
"""
from __future__ import annotations

from edgekit._lazy import keras, tf


def augmenter(seed: int):
    """A tf_keras preprocessing stack (translate 10%, rotate ±0.05 turns (18°), zoom ±10%)."""
    L = keras().layers
    return keras().Sequential(
        [
            L.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed),
            L.RandomRotation(0.05, fill_mode="constant", seed=seed + 1),
            L.RandomZoom(0.1, fill_mode="constant", seed=seed + 2),
        ],
        name="augment",
    )


def augment_dataset(ds, seed: int):
    """Map a batched (x, y) tf.data pipeline through :func:`augmenter`."""
    aug = augmenter(seed)
    tf_ = tf()
    return ds.map(lambda x, y: (aug(x, training=True), y), num_parallel_calls=tf_.data.AUTOTUNE)
