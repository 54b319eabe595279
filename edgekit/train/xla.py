"""XLA (``--jit``) and op determinism.

TensorFlow's op determinism (``tf.config.experimental.enable_op_determinism``, switched on
by :func:`edgekit.train.seed_everything`) refuses XLA clusters that contain ops without a
deterministic XLA kernel: on TF 2.21 the MaxPool gradient of every zoo CNN fails with
"MaxPool gradient ops do not yet have a deterministic XLA implementation", on CPU too.
A ``--jit`` run therefore turns op determinism off: --seed still fixes the initial
weights and the shuffling, but results may differ in the last bits between runs.
"""
from __future__ import annotations

from typing import Callable


def determinism_enabled() -> bool:
    from tensorflow.python.framework import config as tf_config

    return bool(tf_config.is_op_determinism_enabled())


def allow_xla(progress: Callable[[str], None] | None = None) -> bool:
    """Turn op determinism off so XLA can compile the train step; True when it was on."""
    from tensorflow.python.framework import config as tf_config

    was_on = bool(tf_config.is_op_determinism_enabled())
    if was_on:
        tf_config.disable_op_determinism()
        if progress:
            progress("--jit: op determinism is off (XLA has no deterministic MaxPool gradient); "
                     "results may vary in the last bits between runs")
    return was_on


def check_jit_strategy(strategy_name: str, jit: bool) -> None:
    """Refuse ``--jit`` with multi-worker training on CPUs, before any worker connects.

    XLA cannot compile the all-reduce collectives on CPU devices in TF 2.21 ("Collectives
    are not yet implemented for CPU devices when compiling with XLA", b/194942685).
    """
    if not (jit and strategy_name == "multiworker"):
        return
    from edgekit.errors import UsageError
    from edgekit.train.devices import gpus

    if not gpus():
        raise UsageError("--jit cannot be combined with --strategy multiworker on CPUs: XLA does not compile "
                         "collectives for CPU devices in this TensorFlow. Drop --jit (or train on GPUs).")
