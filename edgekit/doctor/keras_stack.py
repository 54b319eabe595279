"""Keras checks: tf_keras (Keras 2) imports, the legacy-Keras switch is in force, tfmot wraps a model."""
from __future__ import annotations

import importlib
import os
from typing import Any

from edgekit.doctor._common import Finding, _probe_model
from edgekit.doctor.requirements import _tf_keras_pin, installed_version, pinned


def check_tf_keras() -> Finding:
    """tf_keras (Keras 2) is installed and imports: tfmot does not support Keras 3."""
    name, have, k3 = "tf_keras", installed_version("tf-keras"), installed_version("keras")
    fix = f'pip install "{_tf_keras_pin()}"'
    if have is None:
        what = f"Keras {k3} without tf_keras" if k3 else "tf_keras is not installed"
        return Finding(name, "fail", f"{what}: tensorflow-model-optimization and edgekit need Keras 2 (tf_keras)", fix)
    if not have.startswith("2."):
        return Finding(name, "fail", f"tf_keras {have} is not Keras 2", fix)
    from edgekit._lazy import keras

    tf_keras = keras()  # imports TensorFlow (start-up noise captured)
    extra = f"; Keras {k3} is installed too (unused by edgekit)" if k3 else ""
    return Finding(name, "ok", f"tf_keras {tf_keras.__version__} imports{extra}")


def check_legacy_keras() -> Finding:
    """``TF_USE_LEGACY_KERAS=1`` is in force: ``tf.keras`` and ``import tensorflow.keras`` give tf_keras.

    TensorFlow picks the Keras behind ``import tensorflow.keras`` when it is imported and the
    one behind ``tf.keras`` on its first use: importing TensorFlow before edgekit (which sets
    the variable) silently gives Keras 3 there.
    """
    name = "legacy keras"
    fix = ("import edgekit (or set os.environ['TF_USE_LEGACY_KERAS'] = '1') before TensorFlow is imported, "
           "or export TF_USE_LEGACY_KERAS=1 before Python starts")
    env = os.environ.get("TF_USE_LEGACY_KERAS")
    from edgekit._lazy import tf

    tf_ = tf()
    import tf_keras

    wrong = []
    if tf_.keras.Model is not tf_keras.Model:
        wrong.append(f"tf.keras is {_keras_of(tf_.keras.Model)}")
    mod = importlib.import_module("tensorflow.keras")
    if getattr(mod, "Model", None) is not tf_keras.Model:
        wrong.append(f"`from tensorflow.keras import ...` gives {_keras_of(getattr(mod, 'Model', None))}")
    if wrong:
        cause = ("TF_USE_LEGACY_KERAS is " + (f"{env!r}" if env is not None else "unset")
                 if env not in ("1", "true", "True")
                 else "TensorFlow was imported (or tf.keras used) before TF_USE_LEGACY_KERAS=1 was set")
        return Finding(name, "fail", f"{'; '.join(wrong)}, not tf_keras: {cause}", fix)
    return Finding(name, "ok", f"TF_USE_LEGACY_KERAS={env}: tf.keras and tensorflow.keras are tf_keras "
                               f"{tf_keras.__version__}")


def check_tfmot() -> Finding:
    """tfmot imports and wraps a tf_keras model for pruning and quantization-aware training."""
    from edgekit._lazy import keras

    k = keras()
    import tensorflow_model_optimization as tfmot

    model = _probe_model()
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model)
    qat = tfmot.quantization.keras.quantize_model(_probe_model())
    if not isinstance(pruned, k.Model) or not isinstance(qat, k.Model):
        return Finding("tfmot", "fail", "tfmot returned a model that is not a tf_keras model",
                       f'pip install "{pinned("tensorflow-model-optimization")}" "{_tf_keras_pin()}"')
    return Finding("tfmot", "ok", f"tfmot {tfmot.__version__}: prune_low_magnitude and quantize_model "
                                  "work on a tf_keras model")


def _keras_of(cls: Any) -> str:
    """Which Keras a class comes from: ``Keras 3.x`` or its top-level module (``nothing`` for None)."""
    mod = getattr(cls, "__module__", "") or ""
    top = mod.split(".")[0]
    if top == "keras":
        return f"Keras {installed_version('keras')}"
    return f"{top or 'nothing'}"
