"""A tiny functional CNN (Conv+BN+ReLU, Conv, Dense) with one planted bad layer."""
from __future__ import annotations

import numpy as np


def build(seed: int = 0):
    """Conv+BN+ReLU -> Conv(relu) "bad" -> Conv(relu) -> pool -> Dense, untrained."""
    from edgekit._lazy import tf

    tf().keras.utils.set_random_seed(seed)
    L = tf().keras.layers
    i = tf().keras.Input((28, 28, 1), name="image")
    x = L.Conv2D(8, 3, strides=2, name="conv_a")(i)
    x = L.BatchNormalization(name="bn_a")(x)
    x = L.ReLU(name="relu_a")(x)
    x = L.Conv2D(16, 3, activation="relu", name="bad")(x)
    x = L.Conv2D(16, 3, strides=2, activation="relu", name="conv_c")(x)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    o = L.Dense(10, activation="softmax", name="logits")(x)
    m = tf().keras.Model(i, o)
    m.compile(tf().keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def plant(model, outlier: float = 1000.0):
    """Make channel 7 of ``relu_a`` always 0 and give every kernel of layer ``bad`` a huge
    weight on that input: the float model's outputs do not change, but int8 weight
    quantization (one scale per output channel) rounds every other weight of ``bad`` to 0,
    so ``bad`` alone is ruined, and keeping it float repairs it."""
    gamma, beta, mean, var = model.get_layer("bn_a").get_weights()
    gamma[-1], beta[-1] = 0.0, -1.0  # bn output -1 -> relu 0, for every input
    model.get_layer("bn_a").set_weights([gamma, beta, mean, var])
    k, b = model.get_layer("bad").get_weights()
    k[1, 1, -1, :] = outlier * np.abs(k).max()
    model.get_layer("bad").set_weights([k, b])
    return model


def plant_activations(model, level: float = 5000.0):
    """relu_a channel 7 = ``level`` for every input; ``bad`` gives it zero weight (float unchanged)."""
    gamma, beta, mean, var = model.get_layer("bn_a").get_weights()
    gamma[-1], beta[-1] = 0.0, level
    model.get_layer("bn_a").set_weights([gamma, beta, mean, var])
    k, b = model.get_layer("bad").get_weights()
    k[:, :, -1, :] = 0.0
    model.get_layer("bad").set_weights([k, b])
    return model


def trained_planted(dataset, epochs: int = 10):
    m = build()
    m.fit(dataset.x_train, dataset.y_train, epochs=epochs, batch_size=32, verbose=0)
    return plant(m)


def x_float_equal(model_a, model_b, x: np.ndarray) -> bool:
    return bool(np.allclose(model_a.predict(x, verbose=0), model_b.predict(x, verbose=0), atol=1e-5))
