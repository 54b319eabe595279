"""Knowledge distillation: train a student on ``alpha * CE(labels) + (1 - alpha) * T^2 *
KL(softmax(teacher / T) || softmax(student / T))`` (Hinton et al. 2015).

The zoo models end in softmax, so they output probabilities, not logits. The loss works from
log-probabilities: ``log softmax(z) = z - logsumexp(z)`` differs from the logits ``z`` by a
per-image constant, and softmax is shift-invariant, so ``softmax(log p / T)`` equals
``softmax(z / T)`` exactly. Softmax is computed stably (``exp(z - max)``), so ``p`` keeps
its relative precision down to float32's smallest normal number; ``log`` is taken of
``max(p, 1.18e-38)`` (an exact 0 -- underflow -- contributes nothing at any T >= 1). When
Keras hands the loss the pre-softmax tensor (``_keras_logits``, set by a Dense/Activation
softmax), the student's logits are used directly. A model whose output layer is not a
softmax is taken to output logits.

Teacher targets are the teacher's log-probabilities, packed with the label as
``y = [label, log p_teacher...]``, so the ordinary Keras fit loop (and its
steps-per-execution speed) runs unchanged. Without augmentation they are computed once per
image before training; with augmentation, per batch on the augmented images.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from edgekit._lazy import tf
from edgekit.errors import UsageError

TINY = float(np.finfo(np.float32).tiny)


def check_distill(alpha: float, temperature: float) -> None:
    """UsageError unless 0 <= alpha <= 1 and temperature >= 1 (finite numbers)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise UsageError(f"distill_alpha (weight of the label loss) must be in [0, 1]. Received: {alpha!r}.")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 1 <= temperature < 1e6:
        raise UsageError(f"temperature must be a number >= 1. Received: {temperature!r}.")


def _output_layer(model):
    layer = model.outputs[0]._keras_history.layer
    while hasattr(layer, "layer") and type(layer).__name__.startswith(("Prune", "Cluster", "Quantize")):
        layer = layer.layer  # tfmot wrappers
    return layer


def outputs_probabilities(model) -> bool:
    """True when the model's output layer applies softmax (it outputs probabilities)."""
    layer = _output_layer(model)
    return type(layer).__name__ == "Softmax" or layer.get_config().get("activation") == "softmax"


def check_teacher(teacher, input_shape: tuple, output_shape: tuple) -> None:
    """UsageError unless the teacher takes ``input_shape`` and outputs ``output_shape`` (the student's)."""
    t = [tuple(o.shape[1:]) for o in teacher.outputs]
    if t != [tuple(output_shape)]:
        raise UsageError(f"The teacher must output what the student outputs, shape {tuple(output_shape)}. Received: "
                         f"teacher {teacher.name!r} with output shape{'s' if len(t) > 1 else ''} "
                         f"{', '.join(map(str, t))}.")
    ti = tuple(teacher.inputs[0].shape[1:])
    if len(teacher.inputs) != 1 or ti != tuple(input_shape):
        raise UsageError(f"The teacher must take the student's input shape {tuple(input_shape)}. Received: "
                         f"teacher {teacher.name!r} with input shape {ti}.")


def _log_softmax_of(out, probabilities: bool):
    tf_ = tf()
    logits = getattr(out, "_keras_logits", None)
    if logits is not None:
        return tf_.nn.log_softmax(logits)
    if probabilities:
        return tf_.math.log(tf_.maximum(out, TINY))
    return tf_.nn.log_softmax(out)


def distill_loss(alpha: float, temperature: float, student_probabilities: bool = True) -> Callable:
    """The loss on packed targets ``[label, teacher log-probs...]``."""
    tf_ = tf()
    T = float(temperature)

    def distillation(y_true, y_pred):
        labels = tf_.cast(y_true[:, 0], tf_.int32)
        teacher = y_true[:, 1:]
        logp = _log_softmax_of(y_pred, student_probabilities)
        ce = -tf_.gather(logp, labels, axis=1, batch_dims=1)
        log_t = tf_.nn.log_softmax(teacher / T)
        log_s = tf_.nn.log_softmax(logp / T)
        kl = tf_.reduce_sum(tf_.exp(log_t) * (log_t - log_s), axis=-1)
        return alpha * ce + (1.0 - alpha) * T * T * kl

    return distillation


def accuracy(y_true, y_pred):
    """Accuracy against the label column of packed targets (named like Keras's metric)."""
    tf_ = tf()
    return tf_.cast(tf_.equal(tf_.argmax(y_pred, -1), tf_.cast(y_true[:, 0], tf_.int64)), tf_.float32)


@dataclasses.dataclass
class Distillation:
    """A teacher and the loss weights; ``setup`` turns a dataset and a student into what fit needs."""

    teacher: Any
    alpha: float = 0.5
    temperature: float = 4.0
    _cache: dict = dataclasses.field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        check_distill(self.alpha, self.temperature)
        self._teacher_probs = outputs_probabilities(self.teacher)

    def teacher_log_probs(self, x: np.ndarray) -> np.ndarray:
        """The teacher's log-probabilities for ``x`` (N, K), float32; a split
        (:class:`~edgekit.data.store.Images`) is read and run a batch at a time."""
        from edgekit.runtimes.keras import keras_predict

        out = np.asarray(keras_predict(self.teacher, x, 256)).astype(np.float64)
        if self._teacher_probs:
            return np.log(np.maximum(out, TINY)).astype(np.float32)
        return (out - out.max(1, keepdims=True)).astype(np.float32)  # logits, shifted

    def packed(self, dataset):
        """The dataset with train/val labels packed as ``[label, teacher log-probs...]`` (cached)."""
        if self._cache.get("source") is not dataset:  # identity: the same Dataset object
            pack = lambda x, y: np.concatenate([y[:, None].astype(np.float32), self.teacher_log_probs(x)], 1)
            self._cache.update(source=dataset, packed=dataclasses.replace(
                dataset, y_train=pack(dataset.x_train, dataset.y_train), y_val=pack(dataset.x_val, dataset.y_val)))
        return self._cache["packed"]

    def batch_map(self, ds):
        """Map a batched ``(x, y)`` pipeline to ``(x, [y, teacher log-probs(x)])`` (per batch)."""
        tf_ = tf()
        teacher, probs = self.teacher, self._teacher_probs

        def add(x, y):
            out = teacher(x, training=False)
            logp = tf_.math.log(tf_.maximum(out, TINY)) if probs else tf_.nn.log_softmax(out)
            return x, tf_.concat([tf_.cast(y, tf_.float32)[:, None], tf_.cast(logp, tf_.float32)], 1)

        return ds.map(add)

    def setup(self, student, dataset, per_batch: bool):
        """``(dataset, loss, metrics, batch_map)`` for :func:`edgekit.train.trainer.fit`."""
        check_teacher(self.teacher, student.inputs[0].shape[1:], student.outputs[0].shape[1:])
        loss = distill_loss(self.alpha, self.temperature, outputs_probabilities(student))
        if per_batch:
            return dataset, loss, [accuracy], self.batch_map
        return self.packed(dataset), loss, [accuracy], None
