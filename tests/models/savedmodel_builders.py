"""Tiny TensorFlow SavedModels for the tests and the fuzzer (built with tf.saved_model.save), SavedModels
that write a file when TensorFlow runs them, and Keras 3 ``model.export()`` SavedModels."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

KERAS3_EXPORTS = r'''
import sys
from pathlib import Path
import numpy as np
import keras
from keras import layers

assert keras.__version__.startswith("3."), keras.__version__
out = Path(sys.argv[1])
keras.utils.set_random_seed(0)
inp = keras.Input((28, 28, 1))
h = layers.Conv2D(4, 3, activation="relu")(inp)
h = layers.BatchNormalization()(h)
h = layers.GlobalAveragePooling2D()(h)
h = layers.Dropout(0.2)(h)
models = {"conv": keras.Model(inp, layers.Dense(10, activation="softmax")(h))}
if sys.argv[2:] == ["apps"]:
    models["mobilenet_v2"] = keras.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), weights=None)
    models["efficientnet_b0"] = keras.applications.EfficientNetB0(weights=None, input_shape=(32, 32, 3))
for name, model in models.items():
    x = np.random.default_rng(0).uniform(0, 1, (2, *model.input_shape[1:])).astype(np.float32)
    model.export(out / name, verbose=False)
    np.save(out / f"{name}_x.npy", x)
    np.save(out / f"{name}_y.npy", model.predict(x, verbose=0))
'''


def make_keras3_exports(out: Path, apps: bool = False, timeout_s: int = 300) -> None:
    """Keras 3 ``model.export()`` SavedModels in ``out`` (``conv``; ``apps``: also ``mobilenet_v2`` and
    ``efficientnet_b0``), each with ``NAME_x.npy`` and Keras 3's predictions ``NAME_y.npy``, made in a
    child process without TF_USE_LEGACY_KERAS."""
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    r = subprocess.run([sys.executable, "-c", KERAS3_EXPORTS, str(out), *(["apps"] if apps else [])], env=env,
                       capture_output=True, text=True, timeout=timeout_s)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])


def tiny_module(nchw: bool = False, write_to: str | None = None):
    """A tf.Module: 3x3 conv (4 filters, SAME, relu), mean, 4x3 matmul, softmax -> {"probs"};
    ``nchw`` takes (N, C, H, W); ``write_to`` adds a WriteFile op (for the unsafe-op refusal)."""
    import tensorflow as tf

    class Tiny(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.random.stateless_normal((3, 3, 1, 4), seed=(1, 2)))
            self.d = tf.Variable(tf.random.stateless_normal((4, 3), seed=(3, 4)))

        def call(self, x):
            if nchw:
                x = tf.transpose(x, [0, 2, 3, 1])
            if write_to:
                tf.io.write_file(write_to, "pwned")
            y = tf.nn.relu(tf.nn.conv2d(x, self.w, 1, "SAME"))
            return {"probs": tf.nn.softmax(tf.reduce_mean(y, [1, 2]) @ self.d)}

    return Tiny()


def save_module(path, module, signatures="default", shape=(None, 8, 8, 1)):
    """tf.saved_model.save ``module`` with signatures "default" (serving_default), "two" (+ logits) or "none"."""
    import tensorflow as tf

    fn = tf.function(module.call)
    spec = tf.TensorSpec(shape, tf.float32, name="x")
    sigs = {"default": {"serving_default": fn.get_concrete_function(spec)},
            "two": {"serving_default": fn.get_concrete_function(spec),
                    "logits": tf.function(lambda x: {"out": module.call(x)["probs"] * 2}).get_concrete_function(spec)},
            "none": None}[signatures]
    tf.saved_model.save(module, str(path), signatures=sigs)
    return path


def _spec(shape=(None, 8, 8, 1)):
    import tensorflow as tf

    return tf.TensorSpec(shape, tf.float32, name="x")


def _probs(x):
    import tensorflow as tf

    return {"probs": tf.nn.softmax(tf.reduce_mean(x, [1, 2, 3])[:, None] * tf.ones((1, 3)))}


def save_planted(path, route: str, target: str):
    """A SavedModel with a serving_default signature (float32 (N, 8, 8, 1) -> "probs") that writes
    ``target`` through ``route`` when TensorFlow runs its graph: "write_file" (tf.io.write_file in the
    signature), "tfrecord" (tf.data TFRecordWriter in the signature), "side_function" (a WriteFile in a
    tf.function kept on the module but not a signature), "initializer" (a resource whose initializer,
    which tf.saved_model.load runs, writes), "print" (tf.print to file://target), "summary" (a
    tf.summary file writer with logdir ``target``), "save_v2" (a checkpoint SaveV2 to ``target`` in the
    signature) or "py_function" (tf.py_function in the signature)."""
    import tensorflow as tf

    module = tf.Module()

    def serve(x):
        if route == "write_file":
            tf.io.write_file(target, "pwned")
        elif route == "tfrecord":
            tf.data.experimental.TFRecordWriter(target).write(tf.data.Dataset.from_tensors(tf.constant("pwned")))
        elif route == "print":
            tf.print("pwned", output_stream=f"file://{target}")
        elif route == "summary":
            w = tf.raw_ops.SummaryWriter()  # what tf.summary.create_file_writer makes in a graph
            tf.raw_ops.CreateSummaryFileWriter(writer=w, logdir=target, max_queue=1, flush_millis=0,
                                               filename_suffix=".v2")
            tf.raw_ops.WriteScalarSummary(writer=w, step=tf.constant(0, tf.int64), tag="pwned", value=1.0)
            tf.raw_ops.FlushSummaryWriter(writer=w)
        elif route == "save_v2":
            tf.raw_ops.SaveV2(prefix=target, tensor_names=["x"], shape_and_slices=[""], tensors=[x])
        elif route == "py_function":
            x = tf.py_function(lambda t: t, [x], tf.float32)
            x.set_shape((None, 8, 8, 1))
        return _probs(x)

    def side():
        tf.io.write_file(target, "pwned")

    if route == "side_function":
        module.side = tf.function(side, input_signature=[])
    if route == "initializer":
        module.table = _WritingResource(target)
    module.serve = tf.function(serve, input_signature=[_spec()])
    tf.saved_model.save(module, str(path), signatures=module.serve)
    return path


def _writing_resource_class():
    import tensorflow as tf

    class WritingResource(tf.saved_model.experimental.TrackableResource):
        """A resource whose initializer writes a file: tf.saved_model.load runs ``_initialize``."""

        def __init__(self, target: str):
            self.target = target
            super().__init__()

        def _create_resource(self):
            return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=[], shared_name="")

        def _initialize(self):
            tf.io.write_file(self.target, "pwned")
            return tf.raw_ops.AssignVariableOp(resource=self.resource_handle, value=1.0)

    return WritingResource


def _WritingResource(target: str):
    return _writing_resource_class()(target)
