"""The Keras 3 model format: ``.keras`` / ``.h5`` files saved by Keras 3 (TensorFlow 2.16+'s default).

Detected by content: the Keras version the file records (``metadata.json`` in a ``.keras`` zip,
the ``keras_version`` attribute of an ``.h5``), else Keras 3 marks in the config (an
``InputLayer`` with ``batch_shape``, ``keras.src.`` module paths, ``DTypePolicy`` dtypes).

Loaded with Keras 3 itself (``import keras`` gives Keras 3 even in a process where
``TF_USE_LEGACY_KERAS=1`` made ``tf.keras`` tf_keras), in safe mode, after the same untrusted-file
checks as tf_keras files (:func:`edgekit.models.io.vet_model_file`). The handle's reference
outputs are the Keras 3 model's own ``predict``. Its ``model`` is a tf_keras translation
(:mod:`edgekit.models.keras3_translate`) once proven equal, so compression works; else the
Keras 3 model. Either way ``info`` holds:

- ``"keras3_model"``: the Keras 3 model;
- ``"translation"``: ``{"ok": True, "max_abs_diff": d, "seconds": s, "proved_on": ...}`` or
  ``{"ok": False, "reason": "layer 'x' (Class) cannot be translated: ..."}``;
- ``"tf_graph"``: what ``handle.tf_graph()`` returns, a frozen
  :class:`~edgekit.models.layout.TfGraph` calling the Keras 3 model in inference mode, for
  converting without tf_keras: ``from_concrete_functions([g.concrete()])`` with no trackable
  (float, and full int8 with a representative dataset).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import vocab
from edgekit.errors import InputError
from edgekit.models.handle import MODEL_FORMATS, ModelHandle, from_keras
from edgekit.models.layout import cached, keras_graph
from edgekit.models.io import MODEL_SUFFIXES, read_model_config, saved_keras_version
from edgekit.models.sizecaps import json_objects

PROOF_IMAGES = 16  # random images the translation is proven on when no sample is given


def _major(version: str | None) -> int | None:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return None


def is_keras3_file(path: Path) -> bool:
    """True when a ``.keras`` / ``.h5`` file was saved by Keras 3 (read as data, no Keras)."""
    if not path.is_file() or path.suffix not in MODEL_SUFFIXES:
        return False
    major = _major(saved_keras_version(path))
    if major is not None:
        return major >= 3
    try:  # no version recorded: look for what only Keras 3 writes
        config = read_model_config(path)
    except InputError:
        return False
    if str(config.get("module", "")).startswith("keras.src."):
        return True
    return any(node.get("class_name") == "DTypePolicy" or "batch_shape" in (node.get("config") or {})
               for node in json_objects(config) if isinstance(node.get("config", {}), dict))


def keras3() -> Any:
    """The Keras 3 module (TensorFlow imported quietly first)."""
    from edgekit._lazy import tf

    tf()
    import keras

    if _major(keras.__version__) != 3:
        raise InputError(f"Reading a Keras 3 model needs Keras 3. Received: keras {keras.__version__}.")
    return keras


def load_keras3(path: Path, trust: bool) -> Any:
    """The Keras 3 model in ``path``, after the untrusted-file checks; InputError (one line) if unreadable."""
    from edgekit.models.io import keras_load, vet_model_file

    vet_model_file(path, trust)
    return keras_load(keras3(), path, "Keras 3", safe_mode=not trust)


def proof_images(shape: tuple[int | None, ...], n: int = PROOF_IMAGES) -> np.ndarray:
    """Deterministic uniform [0, 1) float32 images of the model's input shape."""
    dims = tuple(int(d) if d else 32 for d in shape)
    return np.random.default_rng(0).random((n,) + dims, dtype=np.float32)


def translation_info(model: Any, sample: np.ndarray | None = None) -> tuple[Any | None, dict[str, Any]]:
    """(tf_keras model or None, ``info["translation"]``): translate, then prove on ``sample``
    (float32 NHWC images; random [0, 1) ones when None) before the translation is used."""
    from edgekit.models.keras3_translate import TOLERANCE, UntranslatableError, prove, translate

    start = time.perf_counter()
    try:
        tfk_model = translate(model)
    except UntranslatableError as e:
        return None, {"ok": False, "reason": str(e)}
    x = proof_images(tuple(model.inputs[0].shape[1:])) if sample is None else np.asarray(sample, np.float32)
    diff = prove(model, tfk_model, x)
    seconds = round(time.perf_counter() - start, 3)
    proved_on = f"{len(x)} {'random [0, 1) images' if sample is None else 'sample images'}"
    if not diff <= TOLERANCE:
        return None, {"ok": False, "max_abs_diff": diff, "proved_on": proved_on, "seconds": seconds,
                      "reason": f"the tf_keras translation differs from Keras 3 by {diff:.3g} "
                                f"(limit {TOLERANCE:g}) on {proved_on}"}
    return tfk_model, {"ok": True, "max_abs_diff": diff, "proved_on": proved_on, "seconds": seconds}


def from_keras3(model: Any, path: str | None = None, translate: bool = True,
                sample: np.ndarray | None = None) -> ModelHandle:
    """A handle around an in-memory Keras 3 model (see the module docstring for ``info``)."""
    tfk_model, translation = translation_info(model, sample) if translate else \
        (None, {"ok": False, "reason": "translation not requested"})

    def predict(x: np.ndarray) -> np.ndarray:
        return model.predict(np.asarray(x, np.float32), batch_size=256, verbose=0)

    handle = from_keras(model, path=path)
    return dataclasses.replace(
        handle, model=tfk_model if tfk_model is not None else model, format=vocab.FORMAT_KERAS3,
        framework=vocab.KERAS, layout=vocab.NHWC, predict_fn=predict,
        info={"keras3_model": model, "translation": translation,
              "tf_graph": cached(lambda: keras_graph(model, frozen=True))})


class Keras3Format:
    name = vocab.FORMAT_KERAS3
    description = "a .keras or .h5 file saved by Keras 3 (TensorFlow 2.16+'s default Keras)"

    def detect(self, path: Path) -> bool:
        return is_keras3_file(path)

    def load(self, path: Path, trust: bool, translate: bool = True, sample: np.ndarray | None = None,
             **options: Any) -> ModelHandle:
        """``translate=False`` skips the tf_keras translation; ``sample`` (float32 NHWC images)
        is what the translation is proven on (random [0, 1) images otherwise)."""
        return from_keras3(load_keras3(path, trust), path=str(path), translate=translate, sample=sample)


MODEL_FORMATS.add(vocab.FORMAT_KERAS3, Keras3Format())
