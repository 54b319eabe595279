"""Loading and saving Keras models safely (allow-listed classes, declared-size caps, atomic writes).

A model file is untrusted by default: before Keras sees it, :func:`vet_model_file` reads it as
data and refuses (one line each)

- ``.keras`` zip members whose declared uncompressed size or compression ratio is absurd, from
  the zip directory, before anything is extracted (:func:`edgekit.models.sizecaps.zip_problems`);
- layers far too wide (:data:`MAX_WIDTH`), weights datasets declaring more than
  :data:`~edgekit.models.sizecaps.MAX_WEIGHT_ELEMENTS` elements (HDF5 metadata, never data) and
  a config declaring more than :data:`~edgekit.models.sizecaps.MAX_PARAMS` parameters;
- unless trusted, any class not on the allow-list (:mod:`edgekit.models.allowlist`): ``Lambda``,
  custom or unknown classes, modules outside Keras, ``TFOpLambda`` ops with side effects
  (:class:`UnsafeModelError`, naming the class and layer).

``.h5`` files get these checks too, since Keras' ``safe_mode`` covers only ``.keras``. Opt in
per call (``trust=True``), per block (``with trust_models(): ...``) or per command
(``--trust-model``); the size caps hold even for trusted files.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import math
import zipfile
from pathlib import Path
from typing import Any, Iterator

from edgekit.artifacts import atomic_path
from edgekit.errors import InputError, first_line
from edgekit.models import allowlist, sizecaps

MODEL_SUFFIXES = (".keras", ".h5")
MAX_CONFIG_BYTES = 64 << 20  # a model config larger than this is not a small vision model
# widths a small vision model never needs; larger ones in an untrusted config would make
# Keras allocate gigabytes before any check (a 20 KB file declaring Dense(4,194,304) took 8 GB)
MAX_WIDTH = 65_536
WIDTH_KEYS = ("units", "filters", "depth_multiplier", "output_dim", "input_dim")
SHAPE_KEYS = ("batch_input_shape", "batch_shape", "target_shape", "kernel_size", "pool_size", "size")

_TRUST: contextvars.ContextVar[bool] = contextvars.ContextVar("edgekit_trust_models", default=False)


class UnsafeModelError(InputError):
    """A model file that would run Python code when loaded, and was not trusted (exit 2)."""


@contextlib.contextmanager
def trust_models(trust: bool = True) -> Iterator[None]:
    """Within this block, :func:`load_model` loads models with Python code (``Lambda``) too."""
    token = _TRUST.set(trust)
    try:
        yield
    finally:
        _TRUST.reset(token)


def custom_scope():
    """The scope that lets models saved by the compression stage load (QAT layers)."""
    try:
        from edgekit.models.qat import load_scope  # quantize_scope + fixes for .keras QAT files

        return load_scope()
    except Exception:  # tfmot missing or broken: plain models still load
        return contextlib.nullcontext()


def read_model_config(path: Path) -> dict[str, Any]:
    """The architecture config of a ``.keras`` or ``.h5`` file, read as data (no Keras)."""
    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as z:
                info = z.getinfo("config.json")
                if info.file_size > MAX_CONFIG_BYTES:
                    raise ValueError(f"config.json is {info.file_size:,} bytes")
                raw = z.read(info)
        else:
            import h5py

            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
                if raw is None:
                    raise ValueError("no model_config attribute (a weights-only file?)")
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else str(raw)
        config = json.loads(text)
    except Exception as e:  # bad zip, bad HDF5, missing member, bad JSON/UTF-8 ...
        reason = first_line(e, 160)
        raise InputError(f"{str(path)!r} is not a loadable Keras model: {reason}") from None
    if not isinstance(config, dict):
        raise InputError(f"{str(path)!r} is not a loadable Keras model: its config is not a JSON object.")
    return config


def unsafe_layers(config: Any) -> list[str]:
    """``"Class 'layer' reason"`` for the objects of a model config not on the allow-list."""
    return allowlist.refusals(config)


def oversized(config: Any) -> list[str]:
    """``"key=value"`` for widths or shape entries in a model config above :data:`MAX_WIDTH`."""
    found: list[str] = []
    for node in sizecaps.json_objects(config):
        for k, v in node.items():
            vals = v if k in SHAPE_KEYS and isinstance(v, list) else [v] if k in WIDTH_KEYS + SHAPE_KEYS else []
            if any(isinstance(x, (int, float)) and not isinstance(x, bool) and abs(x) > MAX_WIDTH for x in vals):
                found.append(f"{k}={v}")
        if len(found) >= 3:
            break
    return found[:3]


def saved_keras_version(path: Path) -> str | None:
    """The Keras version a ``.keras`` / ``.h5`` file says it was saved by (``metadata.json``'s or
    the HDF5 ``keras_version`` attribute), read as data; None when the file does not say or
    cannot be read."""
    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as z:
                info = z.getinfo("metadata.json")
                if info.file_size > MAX_CONFIG_BYTES:
                    return None
                version = json.loads(z.read(info).decode("utf-8")).get("keras_version")
        else:
            import h5py

            with h5py.File(path, "r") as f:
                version = f.attrs.get("keras_version")
        version = version.decode("utf-8") if isinstance(version, (bytes, bytearray)) else version
        return version if isinstance(version, str) else None
    except Exception:  # not a zip/HDF5, no metadata, bad JSON: the file does not say
        return None


def _not_loadable(p: Path, e: Exception) -> InputError:
    reason = first_line(e, 160)
    return InputError(f"{str(p)!r} is not a loadable Keras model: {reason}")


def check_sizes(p: Path, config: dict[str, Any]) -> None:
    """InputError (one line) when the file declares more than a small vision model: widths, zip
    members, weights datasets or parameters above the caps of :mod:`edgekit.models.sizecaps`."""
    big = oversized(config)
    if big:
        raise InputError(f"{str(p)!r} declares layers far larger than a small vision model ({', '.join(big)}; "
                         f"limit {MAX_WIDTH:,}); refusing to build it, since that would allocate gigabytes.")
    try:
        elements, nbytes, per_layer = sizecaps.weights_elements(p)
    except Exception as e:  # a corrupt HDF5 member or zip
        raise _not_loadable(p, e) from None
    if elements > sizecaps.MAX_WEIGHT_ELEMENTS or nbytes > sizecaps.MAX_WEIGHT_BYTES:
        raise InputError(f"{str(p)!r} holds weights declaring {elements:,} values ({nbytes:,} bytes; limit "
                         f"{sizecaps.MAX_WEIGHT_ELEMENTS:,} values), far more than a small vision model; "
                         "refusing to read them.")
    params, _ = sizecaps.declared_params(config, per_layer)
    if params > sizecaps.MAX_PARAMS:
        raise InputError(f"{str(p)!r} declares {params:,} parameters (limit {sizecaps.MAX_PARAMS:,}), far more "
                         "than a small vision model; refusing to build it, since that would allocate gigabytes.")


def vet_model_file(p: Path, trusted: bool) -> dict[str, Any]:
    """The config of an untrusted model file, read as data, after refusing what must not be built or
    extracted: oversized members, weights or layers (InputError) and, unless ``trusted``, classes
    not on the allow-list (UnsafeModelError)."""
    if p.suffix == ".keras":
        try:
            members = sizecaps.zip_problems(p)
        except Exception as e:  # not a zip
            raise _not_loadable(p, e) from None
        if members:
            raise InputError(f"{str(p)!r} is refused before extracting anything: {'; '.join(members)}.")
    config = read_model_config(p)
    if not trusted:
        bad = unsafe_layers(config)
        if bad:
            raise UnsafeModelError(
                f"{str(p)!r} contains {'; '.join(bad)}; edgekit loads only allow-listed Keras classes, since "
                "others could run code when the model loads. If you trust where the file comes from, pass "
                "--trust-model (Python: load_model(path, trust=True))."
            )
    check_sizes(p, config)
    return config


def load_model(path: str | Path, trust: bool | None = None):
    """Load a ``.keras`` / ``.h5`` model; corrupt files raise InputError, models with Python
    code (``Lambda``) raise UnsafeModelError unless trusted (``trust`` or :func:`trust_models`)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"Model file {str(p)!r} does not exist.")
    if p.is_dir() or p.suffix not in MODEL_SUFFIXES:
        raise InputError(f"{str(p)!r} is not a Keras model file; expected a {' or '.join(MODEL_SUFFIXES)} file.")
    version = saved_keras_version(p)
    if version and not version.startswith(("1.", "2.")):
        raise InputError(f"{str(p)!r} was saved by Keras {version}, which tf_keras cannot read; "
                         "load it with edgekit.models.load(path), which reads Keras 3 files.")
    trusted = _TRUST.get() if trust is None else trust
    vet_model_file(p, trusted)
    from edgekit._lazy import keras

    with custom_scope():
        kwargs = {"safe_mode": not trusted} if p.suffix == ".keras" else {}
        return keras_load(keras(), p, "Keras", **kwargs)


def keras_load(keras_module: Any, path: Path, what: str, **kwargs: Any) -> Any:
    """``keras_module.models.load_model(path)`` (tf_keras or Keras 3, uncompiled) with every failure
    as one InputError line naming the file and ``what`` was expected."""
    try:
        with allocation_guard():
            model = keras_module.models.load_model(path, compile=False, **kwargs)
    except Exception as e:  # corrupt zip, bad config, unsafe code Keras found ...
        reason = first_line(e)
        raise InputError(f"{str(path)!r} is not a loadable {what} model: {reason}") from None
    if not isinstance(model, keras_module.Model):
        raise InputError(f"{str(path)!r} does not hold a {what} model.")
    return model


@contextlib.contextmanager
def allocation_guard(limit: int = sizecaps.MAX_PARAMS) -> Iterator[None]:
    """Within this block, TensorFlow variables are refused (ValueError, before their initial value
    exists, for tf_keras) once their elements add up past ``limit``: a second line behind
    :func:`check_sizes`, for shapes that only building the graph reveals."""
    from edgekit._lazy import tf

    total = 0

    def creator(next_creator: Any, **kwargs: Any) -> Any:
        nonlocal total
        shape = kwargs.get("shape")
        dims = getattr(shape, "as_list", lambda: shape)() if shape is not None else None
        if isinstance(dims, (list, tuple)) and all(isinstance(d, int) for d in dims):
            total += math.prod(dims)
            if total > limit:
                raise ValueError(f"building it would create more than {limit:,} parameters")
        return next_creator(**kwargs)

    with tf().variable_creator_scope(creator):
        yield


def save_model(model, path: str | Path) -> Path:
    """Save ``model`` atomically (temp file beside ``path``, then rename)."""
    with atomic_path(path) as tmp:
        model.save(tmp)
    return Path(path)
