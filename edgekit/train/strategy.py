"""tf.distribute strategies resolved by name (extended by the acceleration work)."""
from __future__ import annotations

from typing import Any

from edgekit._lazy import tf
from edgekit.registry import Registry

STRATEGIES: Registry = Registry("strategy")


@STRATEGIES.register("default")
def default() -> Any:
    return tf().distribute.get_strategy()


@STRATEGIES.register("mirrored")
def mirrored() -> Any:
    return tf().distribute.MirroredStrategy()


def make_strategy(name: str) -> Any:
    return STRATEGIES.get(name)()
