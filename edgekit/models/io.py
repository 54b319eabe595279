"""Loading and saving Keras models safely (safe_mode, atomic writes, typed errors)."""
from __future__ import annotations

import contextlib
from pathlib import Path

from edgekit.artifacts import atomic_path
from edgekit.errors import InputError

MODEL_SUFFIXES = (".keras", ".h5")


def custom_scope():
    """The scope that lets models saved by the compression stage load (QAT layers)."""
    try:
        from edgekit.compress.qat_io import load_scope  # quantize_scope + fixes for .keras QAT files

        return load_scope()
    except Exception:  # tfmot missing or broken: plain models still load
        return contextlib.nullcontext()


def load_model(path: str | Path):
    """Load a ``.keras`` / ``.h5`` model with ``safe_mode=True``; corrupt files raise InputError."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"Model file {str(p)!r} does not exist.")
    if p.is_dir() or p.suffix not in MODEL_SUFFIXES:
        raise InputError(f"{str(p)!r} is not a Keras model file; expected a {' or '.join(MODEL_SUFFIXES)} file.")
    from edgekit._lazy import keras

    k = keras()
    try:
        with custom_scope():
            kwargs = {"safe_mode": True} if p.suffix == ".keras" else {}
            model = k.models.load_model(p, compile=False, **kwargs)
    except Exception as e:  # corrupt zip, bad config, unsafe lambda ...
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise InputError(f"{str(p)!r} is not a loadable Keras model: {reason}") from None
    if not isinstance(model, k.Model):
        raise InputError(f"{str(p)!r} does not hold a Keras model.")
    return model


def save_model(model, path: str | Path) -> Path:
    """Save ``model`` atomically (temp file beside ``path``, then rename)."""
    with atomic_path(path) as tmp:
        model.save(tmp)
    return Path(path)
