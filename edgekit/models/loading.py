"""``load(path_or_model)``: the model handle of a file, folder or in-memory model, through the
format plug-ins (:data:`edgekit.models.handle.MODEL_FORMATS`). Kept apart from handle.py, which
the format modules import, so that the two never import each other."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgekit import vocab
from edgekit.errors import InputError, UsageError
from edgekit.models.handle import MODEL_FORMATS, ModelFormat, ModelHandle, check_fits, from_keras
from edgekit.models.weights_check import check_handle, nonfinite_weights
from edgekit.registry import Registry


def load_formats() -> Registry[ModelFormat]:
    """Import every format module (registration happens on import) and return the registry."""
    from edgekit.models import keras3_format  # noqa: F401  (before tf_keras: both read .keras/.h5)
    from edgekit.models import onnx_format, savedmodel_format, tf_keras_format  # noqa: F401

    return MODEL_FORMATS


def load(path_or_model: Any, trust: bool | None = None, format: str | None = None, **options: Any) -> ModelHandle:
    """The handle of a model object or a model file/folder, recognised by its content.

    ``format`` forces one of :data:`edgekit.vocab.MODEL_FORMATS`; ``options`` go to the
    format's loader (e.g. ``signature`` for a SavedModel). Untrusted by default (see
    :mod:`edgekit.models.io`).
    """
    if isinstance(path_or_model, ModelHandle):
        return path_or_model
    if not isinstance(path_or_model, (str, os.PathLike)):
        if type(path_or_model).__module__.startswith("keras."):  # an in-memory Keras 3 model
            from edgekit.models.keras3_format import from_keras3

            nonfinite_weights(path_or_model)  # before the translation runs it
            return from_keras3(path_or_model, **options)
        handle = from_keras(path_or_model)
        check_handle(handle)
        return handle
    from edgekit.models.io import _TRUST

    p = Path(path_or_model)
    trusted = _TRUST.get() if trust is None else trust
    handle = load_formats().get(format or detect_format(p)).load(p, trusted, **options)
    check_handle(handle)  # NaN/inf weights: refused before any converter or quantizer sees them
    return handle


def detect_format(path: str | os.PathLike) -> str:
    """The :data:`MODEL_FORMATS` name of the model file or folder at ``path``, by its content."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"Model {str(p)!r} does not exist.")
    registry = load_formats()
    for name, fmt in registry.items():
        if fmt.detect(p):
            return name
    kinds = "; ".join(f"{name}: {fmt.description}" for name, fmt in registry.items())
    raise InputError(f"{str(p)!r} is not a model edgekit can read. Expected one of: {kinds}.")


PROOF_SAMPLES = 64  # dataset images a Keras 3 model's tf_keras translation is proven on


def load_for(path_or_model: Any, dataset: Any = None, *, signature: str | None = None,
             trust: bool | None = None) -> ModelHandle:
    """:func:`load` for a command that has a dataset: a Keras 3 model's translation is proven on
    the dataset's real images; ``signature`` picks a SavedModel's signature (refused for other
    formats); then :func:`check_fits`."""
    if isinstance(path_or_model, ModelHandle) or not isinstance(path_or_model, (str, os.PathLike)):
        handle = load(path_or_model, trust)
    else:
        fmt = detect_format(path_or_model)
        options: dict[str, Any] = {}
        if signature:
            if fmt != vocab.FORMAT_SAVEDMODEL:
                raise UsageError(f"--signature picks a SavedModel signature, but {str(path_or_model)!r} is a {fmt} "
                                 f"model. Received: --signature {signature}.")
            options["signature"] = signature
        if fmt == vocab.FORMAT_KERAS3 and dataset is not None:
            options["sample"] = dataset.x_train[:PROOF_SAMPLES]
        handle = load(path_or_model, trust, format=fmt, **options)
    if dataset is not None:
        check_fits(handle, dataset)
    return handle
