"""The tf_keras model format: ``.keras`` / ``.h5`` files that tf_keras loads (what edgekit writes)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit import vocab
from edgekit.models.handle import MODEL_FORMATS, ModelHandle, from_keras
from edgekit.models.io import MODEL_SUFFIXES
from edgekit.models.keras3_format import is_keras3_file


class TfKerasFormat:
    name = vocab.FORMAT_TF_KERAS
    description = "a .keras or .h5 file saved by tf_keras"

    def detect(self, path: Path) -> bool:
        return path.is_file() and path.suffix in MODEL_SUFFIXES and not is_keras3_file(path)

    def load(self, path: Path, trust: bool, **options: Any) -> ModelHandle:
        from edgekit.models.io import load_model

        return from_keras(load_model(path, trust=trust), path=str(path))


MODEL_FORMATS.add(vocab.FORMAT_TF_KERAS, TfKerasFormat())
