"""Pretrained backbones: keras.applications feature extractors with a small classification head.

``mobilenet-v2``, ``mobilenet-v3-small``, ``efficientnet-b0`` and ``resnet50`` are the
tf_keras application (``include_top=False``, global average pooling) built on the data's
input, then ``Dropout`` + ``Dense`` softmax for the dataset's classes. The model is flat
(the application's layers sit in the model itself, not as one nested layer), so
quantization-aware training, pruning and every exporter see ordinary layers.

- **Channels**: the weights are for RGB. A 1-channel (grayscale) image is repeated to three
  channels by a ``Concatenate`` layer (``to_rgb``; one CONCATENATION op in TFLite, int8 and
  Edge TPU included); other channel counts are refused.
- **Size**: the applications need at least 32x32; a smaller image (28x28 MNIST) is zero-padded
  to 32 (``pad_to_min``).
- **Pixels**: each application's weights expect their own pixel range. The model takes the
  images in that range and the dataset is read under the matching ``--preprocess``
  convention (:data:`PIXELS`; train() sets it and the manifest records it, so export,
  calibration and validation read the same numbers): MobileNetV2/V3 ``symmetric``
  ([-1, 1]; V3 is built with ``include_preprocessing=False``), EfficientNet-B0 ``raw255``
  (its own Rescaling + Normalization layers inside, set to the ImageNet statistics Keras
  applies), ResNet50 ``mean=123.68/116.779/103.939,std=1`` (Keras' "caffe" mode in RGB order;
  the first conv's input channels are reversed on loading, since Keras' file is for BGR).
  No Rescaling layer is added: tfmot's QAT cannot quantize one, and the int8 input
  quantization absorbs the range anyway (the device feeds the same uint8 pixels).
- **BatchNorm**: momentum 0.9 as in the zoo (``BN_MOMENTUM``) so a short run from scratch
  settles its statistics; with pretrained weights every BatchNorm layer is frozen
  (``trainable=False``: inference mode, as in the Keras transfer-learning guide).

Pretrained weights (:func:`load_pretrained`): ``imagenet`` is Keras' own no-top file, found in
the Keras cache (``~/.keras/models/``, or ``$KERAS_HOME/models/``) or downloaded there with a
short timeout; offline, one line names the file and its URL. ``PATH`` is a weights file of the
backbone (tf_keras ``.h5``/``.weights.h5``, e.g. Keras' file itself, or what
:func:`save_backbone_weights` writes) or a trained edgekit ``.keras`` model of the same
backbone; layers are matched by name, else by order, and every shape is checked first.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from edgekit._lazy import keras
from edgekit.errors import InputError, UsageError
from edgekit.models.zoo import BN_MOMENTUM, MODEL_OPTION_CHECKS, _describe, _reg, model_options

IMAGENET = "imagenet"
MIN_SIDE = 32  # the applications' smallest input
INPUT_LAYERS = ("image", "pad_to_min", "to_rgb")  # the adapters in front of the backbone
HEAD_LAYERS = ("head_dropout", "output")
DOWNLOAD_TIMEOUT_S = 15.0
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class Backbone:
    name: str
    app: str  # the tf_keras.applications constructor
    pixels: str  # the edgekit.data.preprocess convention its weights expect
    pixels_text: str
    url: str  # folder of Keras' weight files
    weight_file: Callable[[Mapping[str, Any], int], str]  # (options, input side) -> Keras' no-top file name


def _mnv2_file(opts: Mapping[str, Any], side: int) -> str:
    rows = side if side in (96, 128, 160, 192, 224) else 224  # what Keras picks for other sizes
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(opts['alpha'])}_{rows}_no_top.h5"


def _mnv3_file(opts: Mapping[str, Any], side: int) -> str:
    mini = "_minimalistic" if opts["minimalistic"] else ""
    return f"weights_mobilenet_v3_small{mini}_224_{float(opts['alpha'])}_float_no_top_v2.h5"


BACKBONES: dict[str, Backbone] = {b.name: b for b in (
    Backbone("mobilenet-v2", "MobileNetV2", "symmetric", "[-1, 1]",
             "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/", _mnv2_file),
    Backbone("mobilenet-v3-small", "MobileNetV3Small", "symmetric", "[-1, 1]",
             "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/", _mnv3_file),
    Backbone("efficientnet-b0", "EfficientNetB0", "raw255", "[0, 255]",
             "https://storage.googleapis.com/keras-applications/", lambda o, s: "efficientnetb0_notop.h5"),
    Backbone("resnet50", "ResNet50", "mean=123.68/116.779/103.939,std=1", "0..255 minus the ImageNet RGB mean",
             "https://storage.googleapis.com/tensorflow/keras-applications/resnet/",
             lambda o, s: "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
)}
PIXELS = {name: b.pixels for name, b in BACKBONES.items()}
IMAGENET_ALPHAS = {"mobilenet-v2": (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)}


def is_backbone(name: str) -> bool:
    return name in BACKBONES


# -- the builders (registered in the zoo's MODELS) -------------------------------------------------

@_describe("mobilenet-v2", "keras.applications MobileNetV2 (width alpha, default 0.35) - AvgPool - Dropout - "
                           "Dense; --pretrained imagenet|PATH; pixels [-1, 1]")
def mobilenet_v2(input_shape: tuple[int, ...], num_classes: int, l2: float = 0.0, alpha: float = 0.35,
                 dropout: float = 0.2):
    return _build("mobilenet-v2", input_shape, num_classes, l2, dropout, alpha=alpha)


@_describe("mobilenet-v3-small", "keras.applications MobileNetV3Small (alpha default 1.0, minimalistic: no "
                                 "hard-swish/SE) - Dropout - Dense; --pretrained; pixels [-1, 1]")
def mobilenet_v3_small(input_shape: tuple[int, ...], num_classes: int, l2: float = 0.0, alpha: float = 1.0,
                       minimalistic: bool = False, dropout: float = 0.2):
    return _build("mobilenet-v3-small", input_shape, num_classes, l2, dropout, alpha=alpha,
                  minimalistic=minimalistic, include_preprocessing=False)


@_describe("efficientnet-b0", "keras.applications EfficientNetB0 - Dropout - Dense; --pretrained; "
                              "pixels [0, 255] (its own Rescaling + Normalization)")
def efficientnet_b0(input_shape: tuple[int, ...], num_classes: int, l2: float = 0.0, dropout: float = 0.2):
    return _build("efficientnet-b0", input_shape, num_classes, l2, dropout)


@_describe("resnet50", "keras.applications ResNet50 - Dropout - Dense; --pretrained; pixels 0..255 minus the "
                       "ImageNet mean")
def resnet50(input_shape: tuple[int, ...], num_classes: int, l2: float = 0.0, dropout: float = 0.2):
    return _build("resnet50", input_shape, num_classes, l2, dropout)


def _check_width(name: str) -> Callable[[Any], None]:
    def check(alpha: Any) -> None:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 4:
            raise UsageError(f"{name} option alpha (width multiplier) must be in (0, 4]. Received: {alpha!r}.")
    return check


def _check_dropout(dropout: Any) -> None:
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise UsageError(f"option dropout (the head's dropout rate) must be in [0, 1). Received: {dropout!r}.")


def _check_bool(name: str) -> Callable[[Any], None]:
    def check(v: Any) -> None:
        if not isinstance(v, bool):
            raise UsageError(f"option {name} must be true or false. Received: {v!r}.")
    return check


OPTION_CHECKS: dict[str, dict[str, Callable[[Any], None]]] = {
    "mobilenet-v2": {"alpha": _check_width("mobilenet-v2"), "dropout": _check_dropout},
    "mobilenet-v3-small": {"alpha": _check_width("mobilenet-v3-small"), "dropout": _check_dropout,
                           "minimalistic": _check_bool("minimalistic")},
    "efficientnet-b0": {"dropout": _check_dropout},
    "resnet50": {"dropout": _check_dropout},
}
MODEL_OPTION_CHECKS.update(OPTION_CHECKS)


def _build(name: str, input_shape: tuple[int, ...], num_classes: int, l2: float, dropout: float, **app_kw):
    k = keras()
    L = k.layers
    h, w, c = input_shape
    if c not in (1, 3):
        raise UsageError(f"{name} takes RGB (3-channel) or grayscale (1-channel, repeated to RGB) images; these "
                         f"have {c} channels.")
    _check_dropout(dropout)
    inputs = k.Input(shape=input_shape, name="image")
    x = inputs
    if min(h, w) < MIN_SIDE:
        ph, pw = max(0, MIN_SIDE - h), max(0, MIN_SIDE - w)
        x = L.ZeroPadding2D(((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)), name="pad_to_min")(x)
    if c == 1:
        x = L.Concatenate(name="to_rgb")([x, x, x])
    app = getattr(k.applications, BACKBONES[name].app)
    base = app(input_tensor=x, include_top=False, pooling="avg", weights=None, **app_kw)
    for layer in base.layers:
        if isinstance(layer, L.BatchNormalization):
            layer.momentum = BN_MOMENTUM  # Keras' 0.99-0.999 barely moves in a short run (see zoo.py)
    if name == "efficientnet-b0":
        _set_imagenet_normalization(base)
    y = L.Dropout(dropout, name="head_dropout")(base.output) if dropout else base.output
    out = L.Dense(num_classes, activation="softmax", name="output", **_reg(l2))(y)
    return k.Model(inputs, out, name=name.replace("-", "_"))


def _set_imagenet_normalization(model) -> None:
    """EfficientNet's Normalization layer as Keras' imagenet model applies it: ``(x/255 - mean) / std``.

    (Keras' file stores the std as the variance and multiplies by ``1/sqrt(std)`` after the
    layer when it loads imagenet weights; the variance std^2 here is that map in one layer.)"""
    for layer in model.layers:
        if type(layer).__name__ == "Normalization":
            ws = layer.get_weights()
            mean = np.asarray(IMAGENET_MEAN, np.float32).reshape(ws[0].shape)
            var = (np.asarray(IMAGENET_STD, np.float32) ** 2).reshape(ws[1].shape)
            layer.set_weights([mean, var, *ws[2:]])
            return


# -- the model's parts ---------------------------------------------------------------------------

def backbone_layers(model) -> list:
    """The layers between the input adapters and the head (the application's own)."""
    return [l for l in model.layers if l.name not in INPUT_LAYERS + HEAD_LAYERS]


def weighted_backbone_layers(model, skip_constants: bool = True) -> list:
    """Backbone layers that hold weights (EfficientNet's fixed Normalization left out)."""
    return [l for l in backbone_layers(model) if l.weights
            and not (skip_constants and type(l).__name__ == "Normalization")]


def freeze_batchnorm(model) -> None:
    """Every BatchNorm layer frozen: inference mode, moving statistics and gamma/beta kept."""
    bn = keras().layers.BatchNormalization
    for layer in model.layers:
        if isinstance(layer, bn):
            layer.trainable = False


def freeze_backbone(model) -> None:
    """Phase 1: only the head trains."""
    for layer in backbone_layers(model):
        layer.trainable = False


def resolve_layer(model, spec: str | int) -> int:
    """The index in ``model.layers`` of ``spec`` (a layer name, or an index; negative counts from the end),
    which must be a backbone layer."""
    layers = model.layers
    names = [l.name for l in layers]
    inside = [i for i, l in enumerate(layers) if l.name not in INPUT_LAYERS + HEAD_LAYERS]
    first, last = inside[0], inside[-1]
    if isinstance(spec, str) and spec.strip().lstrip("-").isdigit():
        spec = int(spec)
    if isinstance(spec, int) and not isinstance(spec, bool):
        i = spec + len(layers) if spec < 0 else spec
        if not first <= i <= last:
            raise UsageError(f"fine_tune_from {spec} is outside the backbone: its layers are {first} "
                             f"({names[first]}) to {last} ({names[last]}) of model.layers.")
        return i
    if spec not in names:
        from edgekit.registry import did_you_mean

        raise UsageError(f"fine_tune_from: {model.name} has no layer {spec!r}.{did_you_mean(str(spec), names)} "
                         f"Its backbone runs from {names[first]} to {names[last]}.")
    i = names.index(spec)
    if i not in inside:
        raise UsageError(f"fine_tune_from: {spec!r} is not a backbone layer (give one of {names[first]} ... "
                         f"{names[last]}).")
    return i


def unfreeze_from(model, index: int) -> None:
    """Phase 2: backbone layers from ``model.layers[index]`` on train; earlier ones and every
    BatchNorm stay frozen; the head trains."""
    bn = keras().layers.BatchNormalization
    for i, layer in enumerate(model.layers):
        if layer.name in HEAD_LAYERS:
            layer.trainable = True
        elif layer.name not in INPUT_LAYERS:
            layer.trainable = i >= index and not isinstance(layer, bn)


# -- pretrained weights ----------------------------------------------------------------------------

def check_pretrained(name: str, options: Mapping[str, Any], pretrained: str) -> None:
    """UsageError when ``pretrained`` cannot apply to backbone ``name`` with ``options`` (config time)."""
    if not is_backbone(name):
        raise UsageError(f"pretrained: model {name!r} has no pretrained weights; use one of "
                         f"{', '.join(BACKBONES)} (edgekit models lists them).")
    if not isinstance(pretrained, str) or not pretrained.strip():
        raise UsageError(f"pretrained must be 'imagenet' or a weights file path. Received: {pretrained!r}.")
    if pretrained != IMAGENET:
        return
    opts = _options(name, options)
    if name in IMAGENET_ALPHAS and float(opts["alpha"]) not in IMAGENET_ALPHAS[name]:
        raise UsageError(f"Keras has ImageNet weights for {name} at alpha "
                         f"{', '.join(str(a) for a in IMAGENET_ALPHAS[name])} only. Received: alpha {opts['alpha']}.")
    if name == "mobilenet-v3-small":
        ok = (1.0,) if opts["minimalistic"] else (0.75, 1.0)
        if float(opts["alpha"]) not in ok:
            kind = "minimalistic " if opts["minimalistic"] else ""
            raise UsageError(f"Keras has ImageNet weights for {kind}mobilenet-v3-small at alpha "
                             f"{', '.join(map(str, ok))} only. Received: alpha {opts['alpha']}.")


def _options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    return {**model_options(name), **dict(options)}


def imagenet_file(name: str, options: Mapping[str, Any], input_shape: tuple[int, ...]) -> tuple[str, str]:
    """``(file name, URL)`` of Keras' ImageNet no-top weights for this backbone, options and input."""
    b = BACKBONES[name]
    side = max(MIN_SIDE, min(input_shape[:2])) if input_shape[0] == input_shape[1] else 0
    fname = b.weight_file(_options(name, options), side)
    return fname, b.url + fname


def keras_cache_dirs() -> list[Path]:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models``, ``~/.keras/models``, ``/tmp/.keras/models``
    (Keras' fallback when the home folder is not writable)."""
    dirs = []
    if os.environ.get("KERAS_HOME"):
        dirs.append(Path(os.environ["KERAS_HOME"]) / "models")
    dirs += [Path.home() / ".keras" / "models", Path("/tmp/.keras/models")]
    return list(dict.fromkeys(dirs))


def resolve_pretrained(name: str, options: Mapping[str, Any], pretrained: str, input_shape: tuple[int, ...],
                       progress: Callable[[str], None] | None = None) -> Path:
    """The weights file ``pretrained`` means: a given path (checked to exist), or Keras' ImageNet
    file from its cache, downloaded there (with a timeout) when missing. Offline: a UsageError
    naming the file, its URL and the folder to put it in."""
    check_pretrained(name, options, pretrained)
    if pretrained != IMAGENET:
        p = Path(pretrained).expanduser()
        if not p.is_file():
            raise InputError(f"--pretrained {pretrained!r} does not exist (give a weights .h5 file of the {name} "
                             f"backbone, a trained edgekit .keras model of it, or 'imagenet').")
        return p
    fname, url = imagenet_file(name, options, input_shape)
    for d in keras_cache_dirs():
        if (d / fname).is_file():
            return d / fname
    target = keras_cache_dirs()[0]
    say = (lambda: progress(f"downloading {fname} (ImageNet weights of {name}) into {target}")) if progress else None
    try:
        return _download(url, target / fname, connected=say)
    except (OSError, TimeoutError) as e:
        reason = " ".join(str(getattr(e, "reason", None) or e).split()) or type(e).__name__
        home = Path.home() / ".keras" / "models"
        raise UsageError(f"--pretrained imagenet: {fname} is not in the Keras cache ({home}/) and could not be "
                         f"downloaded ({reason[:120]}); fetch {url} on a machine with network and put it in "
                         f"{home}/, or pass --pretrained PATH/{fname}.") from None


def _download(url: str, dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S, connected: Callable[[], None] | None = None) -> Path:
    """``url`` into ``dest`` (atomically); TimeoutError/OSError when there is no network. The
    connection (name lookup included) is given ``timeout`` seconds in a thread, so nothing hangs."""
    import urllib.request

    box: dict[str, Any] = {}

    def connect():
        try:
            box["response"] = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (https URL of Keras' own)
        except BaseException as e:  # handed to the caller
            box["error"] = e

    t = threading.Thread(target=connect, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"no answer from {url.split('/')[2]} within {timeout:.0f} s")
    if "error" in box:
        err = box["error"]
        raise err if isinstance(err, OSError) else OSError(str(err))
    if connected:
        connected()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        with box["response"] as r, open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _read_h5(path: Path) -> list[tuple[str, list[np.ndarray]]]:
    """``(layer name, weights)`` of every layer with weights in a tf_keras weights (or full-model) .h5."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise InputError(f"--pretrained {str(path)!r} is not a readable HDF5 weights file ({e}).") from None
    with f:
        g = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in g.attrs:
            what = ("a Keras 3 weights file" if "layers" in g or "vars" in g else "not a Keras weights file")
            raise InputError(f"--pretrained {str(path)!r} is {what}; give the backbone's tf_keras weights "
                             "(model.save_weights('x.h5'), Keras' own ImageNet file) or a trained edgekit .keras model.")
        out = []
        for raw in g.attrs["layer_names"]:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            names = [w.decode() if isinstance(w, bytes) else str(w) for w in g[name].attrs.get("weight_names", [])]
            if names:
                out.append((name, [np.asarray(g[name][w]) for w in names]))
        return out


def _read_keras(path: Path) -> list[tuple[str, list[np.ndarray]]]:
    from edgekit.models.io import load_model

    model = load_model(path)
    return [(l.name, l.get_weights()) for l in model.layers if l.weights]


def _entries(path: Path) -> list[tuple[str, list[np.ndarray]]]:
    if path.suffix == ".keras" or path.is_dir():
        return _read_keras(path)
    return _read_h5(path)


def _describe_backbone(name: str, options: Mapping[str, Any]) -> str:
    opts = {k: v for k, v in _options(name, options).items() if k != "dropout"}
    return name + "".join(f" {k} {v}" for k, v in opts.items())


def load_pretrained(model, name: str, options: Mapping[str, Any], path: str | Path) -> dict[str, Any]:
    """Load the weights file ``path`` into the backbone layers of ``model`` (built by this module),
    after checking every shape; a mismatch is one InputError line. Returns what was loaded."""
    path = Path(path)
    entries = _entries(path)
    if name == "efficientnet-b0":  # the fixed ImageNet normalization: not a learned weight
        entries = [(n, ws) for n, ws in entries if not (n.startswith("normalization") and len(ws) == 3)]
    layers = weighted_backbone_layers(model)
    what = _describe_backbone(name, options)
    by_name = {n: ws for n, ws in entries}
    if all(l.name in by_name for l in layers):
        pairs, how = [(l, l.name, by_name[l.name]) for l in layers], "name"
    elif len(entries) == len(layers):
        pairs, how = [(l, n, ws) for l, (n, ws) in zip(layers, entries)], "order"
    else:
        missing = next(l.name for l in layers if l.name not in by_name)
        raise InputError(f"--pretrained {str(path)!r} does not fit {what}: it holds {len(entries)} layers with "
                         f"weights where the backbone has {len(layers)}, and no layer {missing!r}; is it a file of "
                         f"another backbone?")
    bad = []
    for layer, fname, ws in pairs:
        want = [tuple(w.shape) for w in _ordered_weights(layer)]
        got = [tuple(w.shape) for w in ws]
        if want != got:
            bad.append((layer.name, fname, got, want))
    if bad:
        lname, fname, got, want = bad[0]
        at = lname if lname == fname else f"{lname} (file layer {fname})"
        more = f" (and {len(bad) - 1} more layers differ)" if len(bad) > 1 else ""
        raise InputError(f"--pretrained {str(path)!r} does not fit {what}: layer {at} has weights "
                         f"{_shapes(got)} in the file but {_shapes(want)} here{more}; was it saved from another "
                         f"width (alpha) or backbone?")
    for layer, _, ws in pairs:
        weights = list(ws)
        if name == "resnet50" and layer.name == "conv1_conv" and path.suffix != ".keras":
            weights[0] = weights[0][:, :, ::-1, :]  # Keras' file is for BGR images; the model takes RGB
        _set_ordered(layer, weights)
    return {"file": str(path.resolve()), "sha256": _sha256(path), "layers": len(pairs), "matched_by": how}


def _ordered_weights(layer) -> list:
    """A layer's weights in the order tf_keras writes them to .h5 (trainable first)."""
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def _set_ordered(layer, arrays: list[np.ndarray]) -> None:
    for var, a in zip(_ordered_weights(layer), arrays):
        var.assign(np.asarray(a, dtype=var.dtype.as_numpy_dtype))  # a float16 file is read as the float32 it was


def _shapes(shapes: list[tuple[int, ...]]) -> str:
    return ", ".join("x".join(map(str, s)) or "scalar" for s in shapes)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_dir():
        return ""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_backbone_weights(model, name: str, path: str | Path, half: bool = False) -> Path:
    """Write the backbone of ``model`` (an edgekit ``name`` model) as a tf_keras .h5 weights file in Keras'
    layout, loadable with ``--pretrained PATH`` by any model of the same backbone and options.
    ``half``: store float16 (half the size, e.g. for a committed test fixture; loaded back as float32)."""
    import h5py

    path = Path(path)
    layers = weighted_backbone_layers(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [l.name.encode() for l in layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2"
        for layer in layers:
            g = f.create_group(layer.name)
            ws = _ordered_weights(layer)
            names = [f"{layer.name}/{w.name.split('/')[-1]}" for w in ws]
            names = [n if n not in names[:i] else f"{n}_{i}" for i, n in enumerate(names)]
            g.attrs["weight_names"] = [n.encode() for n in names]
            for n, w in zip(names, ws):
                a = w.numpy()
                if name == "resnet50" and layer.name == "conv1_conv" and n.endswith("kernel:0"):
                    a = a[:, :, ::-1, :]  # back to Keras' BGR layout
                g.create_dataset(n, data=a.astype(np.float16) if half and a.dtype == np.float32 else a)
    return path

