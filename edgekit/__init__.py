"""edgekit: train, compress, export and validate small vision models for the edge.

Importing edgekit sets ``TF_USE_LEGACY_KERAS=1`` before TensorFlow is imported, because
tensorflow-model-optimization only supports Keras 2 (``tf_keras``). Heavy libraries are
imported lazily, so ``import edgekit`` stays fast.
"""
from __future__ import annotations

import importlib
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"

# public name -> "module:attribute", resolved on first use
_API = {
    "load_dataset": "edgekit.data:load_dataset",
    "Dataset": "edgekit.data:Dataset",
    "build_model": "edgekit.models:build_model",
    "load_model": "edgekit.models:load_model",
    "model_summary": "edgekit.models:model_summary",
    "trust_models": "edgekit.models:trust_models",
    "TrainConfig": "edgekit.train:TrainConfig",
    "train": "edgekit.train:train",
    "evaluate": "edgekit.train:evaluate",
    "sweep": "edgekit.train:sweep",
    "compress": "edgekit.compress:compress",
    "export": "edgekit.export:export",
    "validate": "edgekit.validate:validate",
    "ValidateConfig": "edgekit.validate:ValidateConfig",
    "export_and_validate": "edgekit.validate:export_and_validate",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str):
    try:
        target = _API[name]
    except KeyError:
        raise AttributeError(f"module 'edgekit' has no attribute {name!r}") from None
    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
