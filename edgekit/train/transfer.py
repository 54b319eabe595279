"""Transfer learning in a training run: the backbone's pixel convention, pretrained weights, and
the two phases (head on a frozen backbone, then fine-tuning from a layer). See docs/transfer.md.

- ``pretrained``: Keras' ImageNet file (``imagenet``) or ``PATH``, loaded into the backbone
  layers after a shape check (:func:`edgekit.models.backbones.load_pretrained`); every
  BatchNorm layer is then frozen (inference mode), as in the Keras transfer-learning guide.
- ``freeze_backbone``: phase 1 trains only the head (``Dropout`` + ``Dense``).
- ``fine_tune_from``: phase 2 unfreezes the backbone from that layer on (BatchNorm stays frozen),
  recompiles with ``fine_tune_lr`` (default lr / 10) and trains ``fine_tune_epochs`` (default
  epochs). History rows carry ``phase`` (``head`` / ``fine-tune``) and run on in one epoch count.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekit.errors import UsageError
from edgekit.train.config import TrainConfig

HEAD, FINE_TUNE = "head", "fine-tune"


def pixel_convention(config: TrainConfig, current: str) -> str | None:
    """The ``--preprocess`` spec the dataset must be read under for ``config``'s backbone (None:
    leave it). ``unit`` (the default) becomes the backbone's own; another convention is kept
    for a backbone trained from scratch and refused with pretrained weights when it differs."""
    from edgekit.models.backbones import BACKBONES, PIXELS

    if config.model not in PIXELS:
        return None
    want = PIXELS[config.model]
    if current in ("unit", want):
        return want if current != want else None
    if config.pretrained is not None:
        raise UsageError(f"{config.model}'s pretrained weights expect pixels {BACKBONES[config.model].pixels_text} "
                         f"(--preprocess {want}); the data is read as {current}. Drop --preprocess (recipe: "
                         f"data.preprocess) or give {want}.")
    return None


def backbone_dataset(config: TrainConfig, dataset: Any, progress: Callable[[str], None] | None = None) -> Any:
    """``dataset`` read under the backbone's pixel convention (unchanged for other models)."""
    from edgekit.data.preprocess import preprocess_dataset
    from edgekit.models.backbones import BACKBONES

    spec = pixel_convention(config, dataset.info.preprocess)
    if spec is None:
        return dataset
    if progress:
        progress(f"pixels: {config.model} takes {BACKBONES[config.model].pixels_text}, so the images are read as "
                 f"--preprocess {spec} (recorded in the manifest; export and validation read them the same way)")
    return preprocess_dataset(dataset, spec)


def weights_file(config: TrainConfig, input_shape: tuple[int, ...],
                 progress: Callable[[str], None] | None = None) -> Path | None:
    """The file ``config.pretrained`` names (found, or downloaded for ``imagenet``), or None."""
    if config.pretrained is None:
        return None
    from edgekit.models.backbones import resolve_pretrained

    return resolve_pretrained(config.model, config.model_options, config.pretrained, tuple(input_shape), progress)


def prepare(model, config: TrainConfig, path: Path | None) -> dict[str, Any] | None:
    """Load the pretrained weights into ``model``, freeze BatchNorm, and the backbone for phase 1."""
    if path is None:
        return None
    from edgekit.models import backbones

    info = backbones.load_pretrained(model, config.model, config.model_options, path)
    info["pretrained"] = config.pretrained
    backbones.freeze_batchnorm(model)
    if config.freeze_backbone:
        backbones.freeze_backbone(model)
    return info


def trainable_params(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def start_fine_tune(model, config: TrainConfig) -> dict[str, Any]:
    """Unfreeze from ``config.fine_tune_from`` (BatchNorm stays frozen); returns the phase's record."""
    from edgekit.models import backbones

    index = backbones.resolve_layer(model, config.fine_tune_from)
    backbones.unfreeze_from(model, index)
    ft = config.fine_tune_config()
    return {"phase": FINE_TUNE, "from_layer": model.layers[index].name, "from_index": index, "lr": ft.learning_rate,
            "epochs": ft.epochs, "trainable_params": trainable_params(model)}


def tag_rows(rows: list[dict[str, float]], phase: str, offset: int = 0) -> list[dict[str, Any]]:
    """``rows`` marked with their phase, epochs numbered on from ``offset``."""
    return [{**r, "epoch": r["epoch"] + offset, "phase": phase} for r in rows]
