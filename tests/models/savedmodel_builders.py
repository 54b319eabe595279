"""Tiny TensorFlow SavedModels for the tests and the fuzzer (built with tf.saved_model.save)."""
from __future__ import annotations


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
