"""Optimizers resolved by name, with the learning rate each starts from by default."""
from __future__ import annotations

from typing import Any, Callable

from edgekit._lazy import keras
from edgekit.registry import Registry

OPTIMIZERS: Registry[Callable[[Any], Any]] = Registry("optimizer")
DEFAULT_LR: dict[str, float] = {}
FULL_BATCH = {"gd"}  # optimizers that take the whole training split as one batch


def _opt(name: str, lr: float):
    def deco(fn):
        DEFAULT_LR[name] = lr
        return OPTIMIZERS.register(name)(fn)
    return deco


@_opt("gd", 0.1)
def gd(lr):
    """Full-batch gradient descent: plain SGD over the whole training split per step."""
    return keras().optimizers.SGD(learning_rate=lr)


@_opt("sgd", 0.01)
def sgd(lr):
    return keras().optimizers.SGD(learning_rate=lr)


@_opt("momentum", 0.01)
def momentum(lr):
    return keras().optimizers.SGD(learning_rate=lr, momentum=0.9)


@_opt("nesterov", 0.01)
def nesterov(lr):
    return keras().optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=True)


@_opt("adagrad", 0.01)
def adagrad(lr):
    return keras().optimizers.Adagrad(learning_rate=lr)


@_opt("rmsprop", 0.001)
def rmsprop(lr):
    return keras().optimizers.RMSprop(learning_rate=lr)


@_opt("adam", 0.001)
def adam(lr):
    return keras().optimizers.Adam(learning_rate=lr)


@_opt("adamw", 0.001)
def adamw(lr):
    return keras().optimizers.AdamW(learning_rate=lr, weight_decay=1e-4)


def make_optimizer(name: str, lr: Any):
    """Build optimizer ``name`` with ``lr`` (a float or a LearningRateSchedule)."""
    return OPTIMIZERS.get(name)(lr)
