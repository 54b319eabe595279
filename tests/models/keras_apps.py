"""keras.applications backbones as a user's Keras 3 files: built in a child process whose environment
has no TF_USE_LEGACY_KERAS (as TensorFlow 2.16+ makes them), no pretrained weights (nothing is
downloaded), a 10-class head, trained briefly on the images given so that their outputs are decisive.

``small=True`` gives the width-reduced variants the tests use (MobileNetV2 alpha 0.35, MobileNetV3Small
alpha 0.75 minimalistic=False, EfficientNetB0's builder at width 0.25, depth 0.25); ResNet50 has no
width setting and is left to the benchmark (benchmarks/real_models.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

APPS = ("mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "resnet50")

CHILD = r'''
import json, sys
from pathlib import Path
import numpy as np
import keras

assert keras.__version__.startswith("3."), keras.__version__
out, names, small, epochs = Path(sys.argv[1]), sys.argv[2].split(","), sys.argv[3] == "1", int(sys.argv[4])
x, y = np.load(out / "x.npy"), np.load(out / "y.npy")
A = keras.applications
shape = x.shape[1:]


def build(name):
    if name == "mobilenet_v2":
        return A.MobileNetV2(input_shape=shape, alpha=0.35, weights=None, classes=10)
    if name == "mobilenet_v3_small":  # its own Rescaling layer in front (include_preprocessing)
        return A.MobileNetV3Small(input_shape=shape, alpha=0.75 if small else 1.0, weights=None, classes=10,
                                  include_preprocessing=True)
    if name == "efficientnet_b0":  # its own Rescaling + Normalization in front
        if small:
            from keras.src.applications.efficientnet import EfficientNet
            return EfficientNet(0.25, 0.25, shape[0], 0.2, name="efficientnetb0", input_shape=shape,
                                weights=None, classes=10)
        return A.EfficientNetB0(input_shape=shape, weights=None, classes=10)
    if name == "resnet50":
        return A.ResNet50(input_shape=shape, weights=None, classes=10)
    raise SystemExit(f"unknown model {name}")


EPOCHS = {"mobilenet_v2": 3}  # times the epochs asked: at 32x32 it learns slowest
facts = {}
for i, name in enumerate(names):
    keras.utils.set_random_seed(i)
    m = build(name)
    scale = 255.0 if name in ("mobilenet_v3_small", "efficientnet_b0") else 1.0  # they rescale inputs themselves
    m.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    n = len(x) * 4 // 5
    m.fit(x[:n] * scale, y[:n], epochs=epochs * EPOCHS.get(name, 1), batch_size=32, verbose=0)
    # keras.applications BatchNorm moving statistics (momentum 0.99/0.999) lag a short training:
    # re-estimated here, as a user would after fine-tuning, so the saved model is usable
    import tensorflow as tf
    bns = [l for l in m.layers if isinstance(l, keras.layers.BatchNormalization)]
    for l in bns:
        l.momentum = 0.0
    for j in range(0, n, 256):
        m(tf.constant(x[j:j + 256] * scale), training=True)  # the last batch's statistics, per layer
    acc = float(m.evaluate(x[n:] * scale, y[n:], verbose=0)[1])
    m.save(out / f"{name}.keras")
    facts[name] = {"params": int(m.count_params()), "val_accuracy": round(acc, 4), "input_scale": scale,
                   "epochs": epochs * EPOCHS.get(name, 1)}
(out / "facts.json").write_text(json.dumps(facts, indent=1))
'''


def make_keras_apps(out: Path, x: np.ndarray, y: np.ndarray, names=APPS, small: bool = True, epochs: int = 2,
                    timeout_s: int = 1200) -> dict:
    """Write ``<name>.keras`` for each of ``names`` into ``out`` (Keras 3, trained ``epochs`` on the first
    80% of ``x``, ``y``); returns their params, validation accuracy and input scale (1 or 255)."""
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "x.npy", np.asarray(x, np.float32))
    np.save(out / "y.npy", np.asarray(y, np.int64))
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    r = subprocess.run([sys.executable, "-c", CHILD, str(out), ",".join(names), "1" if small else "0", str(epochs)],
                       env=env, capture_output=True, text=True, timeout=timeout_s)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    return json.loads((out / "facts.json").read_text())
