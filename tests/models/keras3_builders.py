"""Keras 3 model files for the tests and the fuzzer, made in a child process whose environment has
no TF_USE_LEGACY_KERAS, as a user's TensorFlow 2.16+ would make them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

CHILD = r'''
import sys
from pathlib import Path
import numpy as np
import keras
from keras import layers

assert keras.__version__.startswith("3."), keras.__version__
out = Path(sys.argv[1])
x = np.load(out / "x.npy", allow_pickle=False)
keras.utils.set_random_seed(0)


def save(model, name, suffixes=(".keras",)):
    for s in suffixes:
        model.save(out / f"{name}{s}")
    np.save(out / f"{name}.npy", model.predict(x, verbose=0))


inp = keras.Input((28, 28, 1))
h = layers.Conv2D(8, 3, name="conv")(inp)
h = layers.BatchNormalization(name="bn")(h)
h = layers.ReLU()(h)
h = layers.MaxPooling2D()(h)
h = layers.GlobalAveragePooling2D()(h)
h = layers.Dropout(0.3)(h)
cnn = keras.Model(inp, layers.Dense(10, activation="softmax", name="head")(h), name="cnn")
cnn.compile("adam", "sparse_categorical_crossentropy")
cnn.fit(x[:32], np.arange(32) % 10, epochs=1, batch_size=16, verbose=0)  # a few steps
rng = np.random.default_rng(1)  # trained-looking moving statistics, far from 0 / 1
bn = cnn.get_layer("bn")
bn.set_weights([rng.uniform(0.5, 2, 8), rng.uniform(-0.5, 0.5, 8), rng.uniform(-0.3, 0.3, 8),
                rng.uniform(0.05, 0.5, 8)])
np.save(out / "bn_moving_mean.npy", np.asarray(bn.moving_mean))
save(cnn, "cnn", (".keras", ".h5"))
if sys.argv[2:] == ["cnn"]:  # only the CNN (the fuzzer's seeds)
    sys.exit(0)

inp = keras.Input((28, 28, 1))
r = layers.Rescaling(2.0, offset=-1.0)(inp)
p = layers.ZeroPadding2D(1)(r)
a = layers.Conv2D(6, 3, activation="relu")(p)
b = layers.DepthwiseConv2D(3, depth_multiplier=6)(p)
s = layers.Add()([a, b])
c = layers.SeparableConv2D(6, 3, padding="same")(s)
h = layers.Concatenate()([s, c])
h = layers.BatchNormalization()(h)
h = layers.AveragePooling2D(2)(h)
h = layers.GlobalMaxPooling2D()(h)
save(keras.Model(inp, layers.Dense(10, activation="softmax")(h), name="branchy"), "functional", (".keras", ".h5"))

seq = keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(10), layers.Softmax()])
save(seq, "sequential", (".h5",))

inp = keras.Input((28, 28, 1))
h = layers.LayerNormalization(name="layer_norm")(layers.Conv2D(4, 3)(inp))
save(keras.Model(inp, layers.Dense(10)(layers.Flatten()(h))), "layernorm")

inp = keras.Input((28, 28, 1))
save(keras.Model(inp, layers.Flatten()(layers.Lambda(lambda t: t * 2.0, name="doubler")(inp))), "lambda")

inp = keras.Input((1,))
keras.Model(inp, layers.Dense(70_000)(inp)).save(out / "wide.keras")
'''




def make_keras3_files(out: Path, x: np.ndarray, only_cnn: bool = False, timeout_s: int = 300) -> None:
    """Write the Keras 3 .keras/.h5 files of :data:`CHILD` and their Keras 3 predictions on ``x`` (at least
    32 images) to ``out``; ``only_cnn``: just cnn.keras and cnn.h5."""
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "x.npy", np.asarray(x, np.float32))
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    r = subprocess.run([sys.executable, "-c", CHILD, str(out), *(["cnn"] if only_cnn else [])], env=env, capture_output=True, text=True,
                       timeout=timeout_s)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
