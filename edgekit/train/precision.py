"""Mixed precision for training: the Keras dtype policy, a float32 output layer, loss scaling.

``mixed_float16`` on GPUs (tensor cores; the optimizer is wrapped in a
``LossScaleOptimizer`` by ``Model.compile`` so small fp16 gradients do not underflow),
``mixed_bfloat16`` on CPUs and TPUs (bfloat16 has float32's exponent range: no loss
scale needed). Variables stay float32 either way, and the output softmax is computed in
float32 so the loss is numerically stable. The trained model is handed back in float32:
mixed precision is a training-time speed option, the artifacts are ordinary models.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

from edgekit._lazy import keras
from edgekit.errors import UsageError
from edgekit.train.devices import MIXED_BFLOAT16, MIXED_FLOAT16, gpus

POLICIES = (MIXED_FLOAT16, MIXED_BFLOAT16)


def policy_for_strategy(strategy: Any) -> str:
    """The mixed policy for the devices ``strategy`` computes on."""
    try:
        devices = " ".join(strategy.extended.worker_devices)
    except (RuntimeError, AttributeError):  # the default strategy has no device list
        devices = ""
    if "TPU" in devices or type(strategy).__name__.startswith("TPUStrategy"):
        return MIXED_BFLOAT16
    return MIXED_FLOAT16 if ("GPU" in devices or gpus()) else MIXED_BFLOAT16


@contextlib.contextmanager
def precision_policy(policy: str | None) -> Iterator[str]:
    """Set the global Keras dtype policy for the block (``None``: leave float32) and restore it after."""
    mp = keras().mixed_precision
    before = mp.global_policy()
    if policy is None:
        yield before.name
        return
    if policy not in POLICIES:
        raise UsageError(f"Unknown mixed precision policy {policy!r}. Expected one of: {', '.join(POLICIES)}.")
    mp.set_global_policy(policy)
    try:
        yield policy
    finally:
        mp.set_global_policy(before)


def with_float32_output(model: Any) -> Any:
    """A clone of ``model`` (same weights) whose last layer computes in float32.

    Build and call this under the mixed policy (and inside the strategy scope): every
    other layer keeps the policy; the softmax output and hence the loss stay float32.
    """
    last = model.layers[-1]

    def clone(layer: Any) -> Any:
        cfg = layer.get_config()
        if layer is last:
            cfg["dtype"] = "float32"
        return layer.__class__.from_config(cfg)

    return _clone(model, clone)


def to_float32(model: Any) -> Any:
    """A float32 clone of a mixed-precision ``model`` with the same (float32) weights."""
    def clone(layer: Any) -> Any:
        cfg = layer.get_config()
        cfg["dtype"] = "float32"
        return layer.__class__.from_config(cfg)

    mp = keras().mixed_precision
    before = mp.global_policy()
    mp.set_global_policy("float32")
    try:
        return _clone(model, clone)
    finally:
        mp.set_global_policy(before)


def compute_dtypes(model: Any) -> dict[str, str]:
    """Layer name -> compute dtype (to check what a policy did)."""
    return {layer.name: str(layer.compute_dtype) for layer in model.layers}


def _clone(model: Any, clone_function: Any) -> Any:
    k = keras()
    new = k.models.clone_model(model, clone_function=clone_function)
    new.set_weights(model.get_weights())
    return new
