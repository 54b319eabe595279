"""Keras (tf_keras): the reference every artifact is compared with.

(Inside this package ``import keras`` still finds the real package: absolute imports.)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.runtimes.base import PREDICT_BATCH, Runtime, time_calls
from edgekit.vocab import KERAS


def keras_predict(model: Any, x: Any, batch_size: int = PREDICT_BATCH) -> Any:
    """``model.predict(x, batch_size)`` for a Keras model, with ``x`` an array or a dataset split
    (:class:`~edgekit.data.store.Images`). A split is streamed to ``predict`` through ``tf.data``
    a batch at a time (the same batches ``predict`` makes of an array, so the same outputs) and
    never read whole. A model with several outputs gives a list, as ``predict`` does."""
    from edgekit.data.store import Images

    if not isinstance(x, Images) or not hasattr(model, "predict_function"):  # an array; a model-like object
        return model.predict(x if not isinstance(x, Images) else np.asarray(x), batch_size=batch_size, verbose=0)
    from edgekit._lazy import tf

    tf_ = tf()
    spec = tf_.TensorSpec((None, *x.shape[1:]), tf_.float32)
    steps = -(-len(x) // batch_size)
    ds = tf_.data.Dataset.from_generator(lambda: x.batches(batch_size), output_signature=spec)
    ds = ds.apply(tf_.data.experimental.assert_cardinality(steps)).prefetch(1)
    return model.predict(ds, verbose=0)


class KerasRunner:
    """The reference: a tf_keras model (batched predict; batch-1 latency eager or compiled)."""

    runtime = KERAS

    def __init__(self, model, eager: bool = False):
        self.model = model
        self.eager = eager
        self.threads = os.cpu_count() or 1

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(keras_predict(self.model, x), dtype=np.float32)

    def latency(self, x1: np.ndarray, runs: int = 100, warmup: int = 10) -> dict[str, float]:
        """Latency of one call on all of ``x1`` (pass ``x[:1]`` for batch 1), in a compiled
        tf.function (what serving a Keras model costs) or eagerly."""
        from edgekit._lazy import tf

        t = tf().constant(x1)
        if self.eager:
            fn = lambda: self.model(t, training=False).numpy()  # noqa: E731
        else:
            f = tf().function(lambda v: self.model(v, training=False))
            fn = lambda: f(t).numpy()  # noqa: E731
        return time_calls(fn, runs, warmup)


def _open(model: Any, threads: int | None = None) -> KerasRunner:
    """A model object as it is; a path through edgekit's loader (untrusted by default: safe mode)."""
    if isinstance(model, (str, Path)):
        from edgekit.models.io import load_model

        model = load_model(model)
    return KerasRunner(model)


def _verify(path: Path) -> None:
    """Nothing to parse ahead: edgekit's Keras loader reads the config as data before Keras runs."""


RUNTIME = Runtime(KERAS, "tf_keras (the reference)", _open, _verify)
