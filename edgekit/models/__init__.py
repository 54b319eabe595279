"""Models: the zoo (resolved by name), their summaries, and safe loading/saving."""
from edgekit.models.handle import ModelHandle, TensorSpec, check_fits
from edgekit.models.inspect_artifact import inspect_artifact
from edgekit.models.loading import load
from edgekit.models.io import UnsafeModelError, load_model, save_model, trust_models
from edgekit.models.summary import layer_macs, model_summary
from edgekit.models.zoo import DESCRIPTIONS, MODELS, build_model
from edgekit.models import backbones as _backbones  # noqa: F401  (registers the pretrained backbones)

__all__ = ["load", "ModelHandle", "TensorSpec", "check_fits", "MODELS", "DESCRIPTIONS", "build_model", "load_model", "save_model", "trust_models", "UnsafeModelError", "model_summary", "layer_macs", "inspect_artifact"]
