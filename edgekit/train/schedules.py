"""Learning-rate schedules resolved by name; each maps (initial lr, steps/epoch, config) to a
Keras schedule that changes the rate every step."""
from __future__ import annotations

from typing import Any, Callable

from edgekit._lazy import keras
from edgekit.registry import Registry

SCHEDULES: Registry[Callable[..., Any]] = Registry("schedule")
DESCRIPTIONS = {
    "constant": "the same rate every step",
    "exponential": "lr * decay_rate ** (epoch_float)",
    "step": "lr * step_factor ** floor(epoch / step_every)",
    "cosine": "cosine decay from lr to lr * cosine_alpha over all epochs",
}


@SCHEDULES.register("constant")
def constant(lr: float, steps_per_epoch: int, epochs: int, cfg) -> Any:
    return lr


@SCHEDULES.register("exponential")
def exponential(lr: float, steps_per_epoch: int, epochs: int, cfg) -> Any:
    return keras().optimizers.schedules.ExponentialDecay(lr, decay_steps=steps_per_epoch, decay_rate=cfg.decay_rate)


@SCHEDULES.register("step")
def step(lr: float, steps_per_epoch: int, epochs: int, cfg) -> Any:
    return keras().optimizers.schedules.ExponentialDecay(
        lr, decay_steps=steps_per_epoch * cfg.step_every, decay_rate=cfg.step_factor, staircase=True
    )


@SCHEDULES.register("cosine")
def cosine(lr: float, steps_per_epoch: int, epochs: int, cfg) -> Any:
    return keras().optimizers.schedules.CosineDecay(lr, decay_steps=steps_per_epoch * epochs, alpha=cfg.cosine_alpha)


def make_schedule(name: str, lr: float, steps_per_epoch: int, epochs: int, cfg) -> Any:
    """A float (constant) or a Keras LearningRateSchedule."""
    return SCHEDULES.get(name)(lr, steps_per_epoch, epochs, cfg)
