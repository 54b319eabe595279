"""The valid seed files the fuzzer mutates, made once, offline."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from tests.fuzz.common import ROOT, child_env


# -- seeds ------------------------------------------------------------------------------------
def make_seeds(root: str | Path) -> dict[str, Any]:
    """Write the valid seed files under ``root`` and return their paths (also in seeds.json).

    Imports TensorFlow: run it in a child process (:func:`build_seeds`) to keep the parent light.
    """
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    from edgekit._lazy import keras
    from edgekit.data import load_dataset
    from edgekit.data.sources import load_raw
    from edgekit.export import ExportConfig
    from edgekit.models.io import save_model
    from edgekit.validate import ValidateConfig, export_and_validate

    k = keras()
    k.utils.set_random_seed(0)
    L = k.layers
    model = k.Sequential([
        k.Input(shape=(28, 28, 1), name="image"),
        L.Conv2D(4, 3, strides=2, activation="relu", name="conv1"),
        L.MaxPooling2D(2, name="pool1"),
        L.Flatten(name="flatten"),
        L.Dense(10, activation="softmax", name="output"),
    ], name="fuzz_tiny")
    save_model(model, root / "model.keras")
    data = load_dataset("digits", seed=0, limit=200)
    res = export_and_validate(root / "model.keras", data, ["tflite", "tflite-int8", "onnx", "onnx-int8"],
                              root / "export", export_config=ExportConfig(representative_samples=50),
                              validate_config=ValidateConfig(runs=5, probe=False))

    idx_dir = root / "idx"
    idx_dir.mkdir()
    x, y = load_raw("digits")["all"]
    for prefix, sl in (("train", slice(0, 150)), ("t10k", slice(150, 210))):
        (idx_dir / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(x[sl]), mtime=0))
        (idx_dir / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(y[sl].astype(np.uint8)),
                                                                                mtime=0))
    recipes = root / "recipes"
    recipes.mkdir()
    for f in sorted((ROOT / "recipes").glob("*.yaml")):
        shutil.copy(f, recipes / f.name)

    sys.path.insert(0, str(ROOT))
    from tests.gate.fabricate import make_run

    make_run(root / "run_fabricated")
    model_inputs = make_model_inputs(root, x[:32, :, :, None].astype(np.float32) / 255.0, Path(res.path("onnx")))
    hostile = make_hostile_inputs(root, k, x, y)
    tfrecords = make_tfrecord_seeds(root / "data", hostile)
    seeds = {
        "root": str(root),
        "keras": str(root / "model.keras"),
        "tflite": [str(res.path("tflite")), str(res.path("tflite-int8"))],
        "onnx": [str(res.path("onnx")), str(res.path("onnx-int8"))],
        "idx": str(idx_dir),
        "recipes": [str(p) for p in sorted(recipes.glob("*.yaml"))],
        "runs": [str(root / "run_fabricated"), str(root / "export")],
        **model_inputs,
        **hostile,
        "tfrecord": tfrecords,
    }
    (root / "seeds.json").write_text(json.dumps(seeds, indent=2))
    return seeds


def make_model_inputs(root: Path, x: np.ndarray, tf2onnx_file: Path) -> dict[str, list[str]]:
    """The other model formats a user brings: Keras 3 (.keras, .h5), a SavedModel folder (two
    signatures), an NCHW ONNX file like torch.onnx.export writes and ``tf2onnx_file`` (an NHWC one);
    ``x``: 32 images for Keras 3."""
    import onnx

    from tests.models.keras3_builders import make_keras3_files
    from tests.models.onnx_builders import tiny_cnn
    from tests.models.savedmodel_builders import save_module, tiny_module

    make_keras3_files(root / "keras3", x, only_cnn=True)
    save_module(root / "savedmodel", tiny_module(), "two", shape=(None, 28, 28, 1))
    onnx.save(tiny_cnn(size=28, classes=10), str(root / "torch_like.onnx"))
    torch_default = ROOT / "tests" / "fixtures" / "torchvision"  # torch's dynamo export, .onnx.data beside it
    return {"keras3": [str(root / "keras3" / "cnn.keras"), str(root / "keras3" / "cnn.h5")],
            "savedmodel": [str(root / "savedmodel")],
            "onnx_model": [str(root / "torch_like.onnx"), str(tf2onnx_file),
                           str(torch_default / "mobilenet_v3_small.onnx"), str(torch_default / "resnet18.onnx")]}


# the target path planted into the SavedModel seeds; a case swaps it (same length, so the protobuf
# stays valid) for its own sentinel folder, padded with slashes
PLANTED_PLACEHOLDER = "/edgekit-fuzz-sentinel-" + "x" * 226 + "/pwned"
PLANTED_ROUTES = ("write_file", "tfrecord", "side_function", "initializer", "print", "summary", "save_v2",
                  "py_function")


def planted_target(sentinel: str | Path) -> str:
    """A path into ``sentinel`` exactly as long as :data:`PLANTED_PLACEHOLDER`."""
    pad = len(PLANTED_PLACEHOLDER) - len(str(sentinel)) - len("pwned")
    if pad < 1:
        raise ValueError(f"the sentinel path {str(sentinel)!r} is too long to plant")
    return str(sentinel) + "/" * pad + "pwned"


def make_hostile_inputs(root: Path, k, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Seeds of the input kinds (an .npz, an image folder) and of the hostile kinds: a tf_keras model
    with a TFOpLambda (.keras, .h5), the SavedModels of every planted write route (writing to
    :data:`PLANTED_PLACEHOLDER`), and a second model of the same shape (another seed: an artifact
    validated against it agrees at chance)."""
    import tensorflow as tf
    from PIL import Image

    from tests.models.savedmodel_builders import save_planted

    data = root / "data"
    data.mkdir()
    xs, ys = x[:200], y[:200].astype(np.int64)
    np.savez(data / "digits.npz", x=xs, y=ys)
    np.savez_compressed(data / "digits_split.npz", x_train=xs[:150], y_train=ys[:150], x_test=xs[150:],
                        y_test=ys[150:])
    images = data / "images"
    for c in range(10):
        (images / str(c)).mkdir(parents=True)
        for i in np.flatnonzero(ys[:120] == c)[:8]:
            im = Image.fromarray(np.asarray(xs[i]).reshape(28, 28).astype(np.uint8))
            im.save(images / str(c) / (f"{i}.png" if i % 3 else f"{i}.jpg"))

    L = k.layers
    k.utils.set_random_seed(0)
    inp = k.Input((28, 28, 1), name="image")
    tfop = k.Model(inp, L.Dense(10, activation="softmax", name="head")(L.Flatten()(tf.math.add(inp, 1.0))))
    hostile = root / "hostile"
    hostile.mkdir()
    for suffix in (".keras", ".h5"):
        tfop.save(hostile / f"tfop{suffix}")
    k.utils.set_random_seed(1)
    other = k.Sequential([k.Input(shape=(28, 28, 1)), L.Conv2D(4, 3, strides=2, activation="relu"),
                          L.MaxPooling2D(2), L.Flatten(), L.Dense(10, activation="softmax")])
    other.save(hostile / "model_other.keras")
    planted = {}
    for route in PLANTED_ROUTES:
        planted[route] = str(save_planted(hostile / f"planted_{route}", route, PLANTED_PLACEHOLDER))
    return {"npz": [str(data / "digits.npz"), str(data / "digits_split.npz")], "images": str(images),
            "tfop": [str(hostile / "tfop.keras"), str(hostile / "tfop.h5")],
            "other_keras": str(hostile / "model_other.keras"), "planted": planted}


def make_tfrecord_seeds(data: Path, seeds: dict[str, Any]) -> list[str]:
    """Two TFRecord files (one per feature-name convention) written by ``tf.io.TFRecordWriter``:
    one ``tf.train.Example`` per image of classes 0 and 1 of the image seed folder (PNG and JPEG)
    with its int64 label (tests.fuzz.tfrecord_cases rebuilds the same records by hand)."""
    import tensorflow as tf

    from tests.fuzz.tfrecord_cases import NAMES, seed_parts

    out = []
    for (img_key, lab_key), name in zip(NAMES, ("digits01.tfrecord", "digits01_slim.tfrecord")):
        with tf.io.TFRecordWriter(str(data / name)) as w:
            for image, label in seed_parts(seeds):
                feats = {img_key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
                         lab_key: tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))}
                w.write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
        out.append(str(data / name))
    return out


def build_seeds(root: str | Path, timeout_s: int = 600) -> dict[str, Any]:
    """:func:`make_seeds` in a child process (TensorFlow stays out of the caller)."""
    proc = subprocess.run([sys.executable, "-m", "tests.fuzz.engine", "seeds", str(root)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout_s, env=child_env())
    if proc.returncode != 0:
        raise RuntimeError(f"building the fuzz seeds failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads((Path(root) / "seeds.json").read_text())


def idx_bytes(a: np.ndarray, dtype_code: int = 0x08) -> bytes:
    header = bytes([0, 0, dtype_code, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    return header + np.ascontiguousarray(a).tobytes()
