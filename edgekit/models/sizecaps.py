"""Declared sizes of an untrusted Keras model file, read as data before anything is built or extracted.

- :func:`declared_params`: the parameter count a model config declares, by a walk of its layer
  graph from the input shapes (each layer's output shape computed here, not taken from the
  file); a weighted layer whose input shape the walk cannot follow counts by the shape the
  file claims for it (``build_config``, Keras 3 tensor shapes), else by its weights datasets.
- :func:`weights_elements`: elements and bytes the weights datasets declare (HDF5 metadata
  only: a compressed dataset declaring a huge shape is never read).
- :func:`zip_problems`: ``.keras`` members whose declared uncompressed size or compression
  ratio is absurd, read from the zip directory.
"""
from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any, Iterator

MAX_PARAMS = 100_000_000  # ~4x keras.applications ResNet50 (25.6 M); far above any small vision model
MAX_WEIGHT_ELEMENTS = 3 * MAX_PARAMS  # weights plus optimizer slots (Adam keeps two per weight)
MAX_WEIGHT_BYTES = 8 * MAX_WEIGHT_ELEMENTS  # float64 at most per element
MAX_ASSET_BYTES = 64 << 20  # an asset member (vocabularies, tables) of a vision model
MAX_ZIP_RATIO = 100  # uncompressed / compressed, for members above RATIO_FLOOR_BYTES
RATIO_FLOOR_BYTES = 16 << 20
WEIGHTS_MEMBERS = ("model.weights.h5", "model.weights.npz", "variables.h5", "variables.npz")

Shape = "tuple[int | None, ...] | None"
SAME_SHAPE = frozenset("""
Activation ReLU LeakyReLU PReLU ELU Softmax ThresholdedReLU BatchNormalization LayerNormalization
GroupNormalization UnitNormalization Normalization Rescaling Dropout SpatialDropout1D SpatialDropout2D
SpatialDropout3D GaussianNoise GaussianDropout AlphaDropout ActivityRegularization Identity Masking
RandomFlip RandomRotation RandomZoom RandomTranslation RandomContrast RandomBrightness LayerScale
Add Subtract Multiply Average Maximum Minimum QuantizeLayer
""".split())


def _ints(v: Any) -> tuple[int, ...]:
    vals = v if isinstance(v, (list, tuple)) else [v]
    return tuple(int(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else 1 for x in vals)


def _shape(v: Any) -> Shape:
    """A shape from a config value (a list of ints / None), or None when it is not one."""
    if isinstance(v, dict) and "input_shape" in v:
        v = v["input_shape"]
    if isinstance(v, list) and v and isinstance(v[0], list):
        v = v[0]
    if not isinstance(v, list) or not all(x is None or (isinstance(x, int) and not isinstance(x, bool)) for x in v):
        return None
    return tuple(v)


def _spatial(n: int | None, k: int, s: int, pad: str, d: int = 1, transpose: bool = False) -> int | None:
    if n is None:
        return None
    if transpose:
        return n * s if pad == "same" else n * s + max(k - s, 0)
    if pad == "same":
        return -(-n // s)
    return max(-(-(n - (k - 1) * d) // s), 0)


def _channels_axis(cfg: dict, rank: int) -> int:
    return 1 if cfg.get("data_format") == "channels_first" and rank > 2 else rank - 1


def _conv_like(cls: str, cfg: dict, shape: tuple) -> tuple[int, Shape]:
    """(params, output shape) of a convolution or pooling layer on ``shape``."""
    axis = _channels_axis(cfg, len(shape))
    ch = shape[axis] or 0
    dims = [i for i in range(1, len(shape)) if i != axis]
    pool = "Pooling" in cls
    k = _ints(cfg.get("pool_size" if pool else "kernel_size", 1))
    s = _ints(cfg.get("strides") or k if pool else cfg.get("strides", 1))
    d = _ints(cfg.get("dilation_rate", 1))
    k, s, d = (t * len(dims) if len(t) == 1 else t for t in (k, s, d))
    area = math.prod(k)
    filters, dm, groups = int(cfg.get("filters") or 0), int(cfg.get("depth_multiplier") or 1), int(cfg.get("groups") or 1)
    bias = bool(cfg.get("use_bias", True))
    if pool:
        params, out_ch = 0, ch
    elif cls.startswith("Depthwise"):
        params, out_ch = area * ch * dm + bias * ch * dm, ch * dm
    elif cls.startswith("Separable"):
        params, out_ch = area * ch * dm + ch * dm * filters + bias * filters, filters
    else:
        params, out_ch = area * ch // max(groups, 1) * filters + bias * filters, filters
    pad = str(cfg.get("padding", "valid")).lower()
    out = list(shape)
    for i, dim in enumerate(dims):
        out[dim] = _spatial(shape[dim], k[i], s[i], pad, d[i], transpose="Transpose" in cls)
    out[axis] = out_ch
    return params, tuple(out)


def _layer(cls: str, cfg: dict, shapes: list[Shape]) -> tuple[int | None, Shape]:
    """(params or None when unknown, output shape or None) of one layer on its input shapes."""
    shape = shapes[0] if shapes else None
    if shape is None:
        return None, None
    last = shape[-1] or 0
    if cls == "Dense":
        units = int(cfg.get("units") or 0)
        return last * units + units * bool(cfg.get("use_bias", True)), shape[:-1] + (units,)
    if "Conv" in cls or ("Pooling" in cls and not cls.startswith("Global")):
        return _conv_like(cls, cfg, shape)
    if cls.startswith("Global"):
        axis = _channels_axis(cfg, len(shape))
        return 0, (shape[0], shape[axis])
    if cls in ("BatchNormalization",):
        return 4 * last, shape
    if cls in ("LayerNormalization", "GroupNormalization"):
        return 2 * last, shape
    if cls == "Normalization":
        return 2 * last + 1, shape
    if cls == "PReLU":
        return math.prod(x or 1 for x in shape[1:]), shape
    if cls == "Embedding":
        return int(cfg.get("input_dim") or 0) * int(cfg.get("output_dim") or 0), shape + (int(cfg.get("output_dim") or 0),)
    if cls in SAME_SHAPE:
        return 0, shape
    if cls == "Flatten":
        rest = shape[1:]
        return 0, (shape[0], None if None in rest else math.prod(rest))
    if cls == "Reshape":
        target = _ints(cfg.get("target_shape", ()))
        return 0, (shape[0],) + tuple(None if t < 0 else t for t in target)
    if cls == "Concatenate":
        return 0, _concatenated(shapes, int(cfg.get("axis", -1)))
    if cls == "InputLayer":
        return 0, shape
    return None, None  # a layer whose output this walk does not follow


def _concatenated(shapes: list[Shape], axis: int) -> Shape:
    """The output shape of a concatenation along ``axis`` (None when an input shape is unknown)."""
    try:
        sizes = [s[axis] for s in shapes]  # type: ignore[index]
        out = list(shapes[0])  # type: ignore[arg-type]
    except (TypeError, IndexError):
        return None
    out[axis] = None if None in sizes else sum(sizes)  # type: ignore[arg-type]
    return tuple(out)


def _histories(node: Any) -> Iterator[str]:
    """Names of the layers a functional node's inputs come from (both serialization formats)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            hist = (n.get("config") or {}).get("keras_history") if n.get("class_name") == "__keras_tensor__" else None
            if isinstance(hist, list) and hist and isinstance(hist[0], str):
                yield hist[0]
            else:
                stack.extend(n.values())
        elif isinstance(n, list):
            if len(n) >= 3 and isinstance(n[0], str) and isinstance(n[1], int):  # [name, node, tensor, kwargs]
                yield n[0]
            else:
                stack.extend(n)


def _claimed(layer: dict) -> Shape:
    """The input shape a file claims for a layer: its ``build_config``, or a Keras 3 tensor's shape."""
    claim = _shape((layer.get("build_config") or {}).get("input_shape"))
    if claim is None:
        for n in json_objects(layer.get("inbound_nodes")):
            if n.get("class_name") == "__keras_tensor__":
                return _shape((n.get("config") or {}).get("shape"))
    return claim


def json_objects(x: Any) -> Iterator[dict]:
    """Every JSON object in ``x`` (a model config or part of one), at any depth (iteratively: no
    recursion limit)."""
    stack = [x]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            yield n
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)


def _input_shape(cfg: dict) -> Shape:
    return _shape(cfg.get("batch_shape") or cfg.get("batch_input_shape"))


def _params(layer: dict, shapes: list[Shape], weights: dict[str, int], unknown: list[str]) -> tuple[int, Shape]:
    """(params, output shape) of one graph layer, nested models and wrappers included."""
    cls, cfg = str(layer.get("class_name")), layer.get("config") if isinstance(layer.get("config"), dict) else {}
    name = str(cfg.get("name", layer.get("name", "?")))
    if cls in ("Functional", "Sequential"):
        return model_walk(layer, weights, unknown), None
    if isinstance(cfg.get("layer"), dict):  # a tfmot wrapper: the wrapped layer's weights (+ a few of its own)
        inner = dict(cfg["layer"], build_config=layer.get("build_config"))
        return _params(inner, shapes, weights, unknown)
    params, out = _layer(cls, cfg, shapes)
    if params is None:  # input shape not followed: what the file claims, and its weights, bound it
        claim = _claimed(layer)
        params, out = _layer(cls, cfg, [claim]) if claim is not None else (None, None)
        params = max(params or 0, weights.get(name, 0))
        if not params and any(k in cfg for k in ("units", "filters", "kernel_size", "input_dim")):
            unknown.append(name)
    return params or 0, out


def model_walk(model: dict, weights: dict[str, int], unknown: list[str]) -> int:
    """Parameters of a ``Sequential`` / ``Functional`` config; layers the walk could not size go to ``unknown``."""
    cfg = model.get("config") if isinstance(model.get("config"), dict) else {}
    layers = [l for l in cfg.get("layers", []) if isinstance(l, dict)]
    total, outs = 0, {}
    shape: Shape = _input_shape(cfg) or _claimed(model)
    for layer in layers:
        lcfg = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        if model.get("class_name") == "Sequential":
            shape = shape or _input_shape(lcfg)
            shapes = [shape]
        else:
            shapes = [outs.get(n) for n in _histories(layer.get("inbound_nodes"))] or [_input_shape(lcfg)]
        params, shape = _params(layer, shapes, weights, unknown)
        outs[str(layer.get("name", lcfg.get("name")))] = shape
        total += params
    return total


def declared_params(config: dict, weights: dict[str, int] | None = None) -> tuple[int, list[str]]:
    """(parameters the model config declares, names of weighted layers it could not size)."""
    unknown: list[str] = []
    if config.get("class_name") in ("Functional", "Sequential"):
        return model_walk(config, weights or {}, unknown), unknown
    params, _ = _params(config, [None], weights or {}, unknown)
    return params, unknown


def _h5_datasets(group: Any) -> Iterator[tuple[str, Any]]:
    """(path, dataset) of every HDF5 dataset under ``group``, metadata only."""
    import h5py

    stack = [group]
    while stack:
        g = stack.pop()
        for key in list(g.keys()):
            item = g.get(key, getlink=False)
            if isinstance(item, h5py.Dataset):
                yield item.name, item
            elif isinstance(item, h5py.Group):
                stack.append(item)


def weights_elements(path: Path) -> tuple[int, int, dict[str, int]]:
    """(elements, bytes, elements per top-level layer name) the weights datasets of a ``.h5`` or of
    the weights member of a ``.keras`` declare; (0, 0, {}) when the file holds no HDF5 weights."""
    import h5py

    def count(f: Any) -> tuple[int, int, dict[str, int]]:
        elements = nbytes = 0
        per: dict[str, int] = {}
        for name, ds in _h5_datasets(f):
            n = int(math.prod(ds.shape)) if ds.shape else 1
            elements, nbytes = elements + n, nbytes + n * ds.dtype.itemsize
            parts = [p for p in name.split("/") if p and p not in ("model_weights", "layers", "_layer_checkpoint_dependencies")]
            if parts:
                per[parts[0]] = per.get(parts[0], 0) + n
        return elements, nbytes, per

    if path.suffix == ".h5":
        with h5py.File(path, "r") as f:
            return count(f)
    with zipfile.ZipFile(path) as z:
        if "model.weights.h5" not in z.namelist():
            return 0, 0, {}
        with z.open("model.weights.h5") as member, h5py.File(member, "r") as f:
            return count(f)


def zip_problems(path: Path) -> list[str]:
    """Members of a ``.keras`` zip too large to extract or read, from the zip directory alone."""
    found = []
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
    total = 0
    for info in infos:
        size, name = info.file_size, info.filename
        total += size
        limit = MAX_WEIGHT_BYTES if name in WEIGHTS_MEMBERS else MAX_ASSET_BYTES
        if size > limit:
            found.append(f"member {name!r} declares {size:,} bytes uncompressed (limit {limit:,})")
        elif size > RATIO_FLOOR_BYTES and size > MAX_ZIP_RATIO * max(info.compress_size, 1):
            found.append(f"member {name!r} expands {size // max(info.compress_size, 1):,}x "
                         f"(limit {MAX_ZIP_RATIO}x above {RATIO_FLOOR_BYTES >> 20} MiB)")
    if not found and total > MAX_WEIGHT_BYTES + MAX_ASSET_BYTES:
        found.append(f"its members declare {total:,} bytes uncompressed in all")
    return found[:3]
