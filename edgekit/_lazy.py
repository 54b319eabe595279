"""Lazy access to TensorFlow and tf_keras (importing TensorFlow takes seconds)."""
from __future__ import annotations

import os
from types import ModuleType

os.environ["TF_USE_LEGACY_KERAS"] = "1"


def tf() -> ModuleType:
    import tensorflow

    return tensorflow


def keras() -> ModuleType:
    import tf_keras

    return tf_keras
