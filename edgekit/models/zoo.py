"""The model zoo: the reference MNIST CNN, structural variants and two MLPerf Tiny reference
networks (ResNet-8, MobileNetV1), resolved by name.

Every builder takes the input shape and class count from the data, an optional L2
penalty ``l2`` added to the loss as ``l2 * sum(w**2)`` for each conv/dense kernel, and
its own keyword options (``mobilenet-v1``: ``alpha``), passed as ``model_options``.
The small CNNs keep their 28x28 layout exactly and adapt to other sizes: a conv whose
input is smaller than 5 pixels pads ("same"), a pool on fewer than 4 pixels is left out,
and a feature map wider than 4x4 before Flatten is pooled down to at most 4x4.
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Mapping

from edgekit._lazy import keras
from edgekit.errors import UsageError
from edgekit.registry import Registry

Builder = Callable[..., Any]
MODELS: Registry[Builder] = Registry("model")
DESCRIPTIONS: dict[str, str] = {}
MIN_VALID = 5  # a 3x3 "valid" conv needs this many pixels to leave a 3x3 map
MIN_POOL = 4
MAX_FLAT = 5  # largest spatial side before Flatten: the zoo at 28x28 as it always was (cnn 3x3, cnn-small 5x5)
# Keras' 0.99 leaves the moving statistics mostly at their initial values after the few
# hundred steps an edgekit run takes, so the inference model (and the int8 export, which
# folds them) predicts one class; 0.9 settles in ~50 steps.
BN_MOMENTUM = 0.9


def _describe(name: str, text: str) -> Callable[[Builder], Builder]:
    DESCRIPTIONS[name] = text
    return MODELS.register(name)


def _reg(l2: float, key: str = "kernel_regularizer") -> dict[str, Any]:
    return {key: keras().regularizers.l2(l2)} if l2 else {}


class _Stack:
    """A Sequential built layer by layer, so each layer can adapt to the map it receives."""

    def __init__(self, name: str, input_shape: tuple[int, ...]):
        k = keras()
        self.model = k.Sequential([k.Input(shape=input_shape, name="image")], name=name)

    @property
    def side(self) -> int:
        shape = self.model.output_shape
        return min(shape[1:-1]) if len(shape) == 4 else 0

    def add(self, layer) -> "_Stack":
        self.model.add(layer)
        return self

    def conv(self, cls, *args, **kw) -> "_Stack":
        return self.add(cls(*args, padding="valid" if self.side >= MIN_VALID else "same", **kw))

    def pool(self, name: str) -> "_Stack":
        return self.add(keras().layers.MaxPooling2D(2, name=name)) if self.side >= MIN_POOL else self

    def flatten(self) -> "_Stack":
        shape = self.model.output_shape
        if max(shape[1:-1]) > MAX_FLAT:
            size = tuple(math.ceil(d / MAX_FLAT) for d in shape[1:-1])
            self.add(keras().layers.MaxPooling2D(size, name="pool_flat"))
        return self.add(keras().layers.Flatten(name="flatten"))

    def head(self, num_classes: int, l2: float, hidden: int | None = 64):
        L = keras().layers
        if hidden:
            self.add(L.Dense(hidden, activation="relu", name="dense1", **_reg(l2)))
        return self.add(L.Dense(num_classes, activation="softmax", name="output", **_reg(l2))).model


@_describe("cnn", "the reference network: Conv32-Pool-Conv64-Pool-Conv64-Dense64-Dense")
def cnn(input_shape: tuple[int, ...], num_classes: int, l2: float = 0.0):
    L = keras().layers
    s = _Stack("cnn", input_shape).conv(L.Conv2D, 32, 3, activation="relu", name="conv1", **_reg(l2))
    s.pool("pool1").conv(L.Conv2D, 64, 3, activation="relu", name="conv2", **_reg(l2)).pool("pool2")
    s.conv(L.Conv2D, 64, 3, activation="relu", name="conv3", **_reg(l2))
    return s.flatten().head(num_classes, l2)


@_describe("cnn-small", "fewer layers: Conv16-Pool-Conv32-Pool-Dense")
def cnn_small(input_shape: tuple[int, ...], num_classes: int, l2: float = 0.0):
    L = keras().layers
    s = _Stack("cnn_small", input_shape).conv(L.Conv2D, 16, 3, activation="relu", name="conv1", **_reg(l2))
    s.pool("pool1").conv(L.Conv2D, 32, 3, activation="relu", name="conv2", **_reg(l2)).pool("pool2")
    return s.flatten().head(num_classes, l2, hidden=None)


@_describe("ds-cnn", "depthwise-separable convs: Conv32-Pool-DW3x3+PW64-Pool-DW3x3+PW64-Dense64-Dense")
def ds_cnn(input_shape: tuple[int, ...], num_classes: int, l2: float = 0.0):
    L = keras().layers
    reg, dw = _reg(l2), _reg(l2, "depthwise_regularizer")
    s = _Stack("ds_cnn", input_shape).conv(L.Conv2D, 32, 3, activation="relu", name="conv1", **reg).pool("pool1")
    for i in (2, 3):
        s.conv(L.DepthwiseConv2D, 3, activation="relu", name=f"dwconv{i}", **dw)
        s.add(L.Conv2D(64, 1, activation="relu", name=f"pwconv{i}", **reg))
        if i == 2:
            s.pool("pool2")
    return s.flatten().head(num_classes, l2)


@_describe("mlp", "dense-only baseline: Flatten-Dense128-Dense64-Dense")
def mlp(input_shape: tuple[int, ...], num_classes: int, l2: float = 0.0):
    L = keras().layers
    s = _Stack("mlp", input_shape).add(L.Flatten(name="flatten"))
    return s.add(L.Dense(128, activation="relu", name="dense0", **_reg(l2))).head(num_classes, l2)


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, l2: float, relu: bool = True,
             depthwise: bool = False):
    """Conv (or DepthwiseConv) - BatchNorm (- ReLU), the block tfmot folds at quantization."""
    L = keras().layers
    if depthwise:
        x = L.DepthwiseConv2D(kernel, stride, padding="same", name=name,
                              **_reg(l2, "depthwise_regularizer"))(x)
    else:
        x = L.Conv2D(filters, kernel, stride, padding="same", name=name, **_reg(l2))(x)
    x = L.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return L.ReLU(name=f"{name}_relu")(x) if relu else x


def _pool_head(x, inputs, num_classes: int, l2: float, name: str):
    """AveragePool over the whole map, Flatten, Dense softmax (the MLPerf Tiny heads)."""
    k = keras()
    L = k.layers
    x = L.AveragePooling2D(pool_size=tuple(int(d) for d in x.shape[1:3]), name="avg_pool")(x)
    x = L.Flatten(name="flatten")(x)
    out = L.Dense(num_classes, activation="softmax", name="output", **_reg(l2))(x)
    return k.Model(inputs, out, name=name)


@_describe("resnet8", "MLPerf Tiny image classification ResNet-8: Conv16-BN + 3 residual stages "
                      "(16/32/64, 1x1 conv shortcuts) - AvgPool - Dense")
def resnet8(input_shape: tuple[int, ...], num_classes: int, l2: float = 0.0):
    L = keras().layers
    inputs = keras().Input(shape=input_shape, name="image")
    x = _conv_bn(inputs, 16, 3, 1, "conv1", l2)
    for stage, (filters, stride) in enumerate(((16, 1), (32, 2), (64, 2)), start=1):
        y = _conv_bn(x, filters, 3, stride, f"stage{stage}_conv1", l2)
        y = _conv_bn(y, filters, 3, 1, f"stage{stage}_conv2", l2, relu=False)
        if stride != 1 or int(x.shape[-1]) != filters:
            x = L.Conv2D(filters, 1, stride, padding="same", name=f"stage{stage}_shortcut", **_reg(l2))(x)
        x = L.ReLU(name=f"stage{stage}_relu")(L.Add(name=f"stage{stage}_add")([x, y]))
    return _pool_head(x, inputs, num_classes, l2, "resnet8")


MOBILENET_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


@_describe("mobilenet-v1", "MLPerf Tiny visual wake words MobileNetV1 (width alpha, default 0.25): "
                           "Conv32-BN + 13 DW+PW BN blocks - AvgPool - Dense")
def mobilenet_v1(input_shape: tuple[int, ...], num_classes: int, l2: float = 0.0, alpha: float = 0.25):
    _check_alpha(alpha)
    inputs = keras().Input(shape=input_shape, name="image")
    x = _conv_bn(inputs, max(1, int(32 * alpha)), 3, 2, "conv1", l2)
    for i, (filters, stride) in enumerate(MOBILENET_BLOCKS, start=1):
        x = _conv_bn(x, 0, 3, stride, f"block{i}_dw", l2, depthwise=True)
        x = _conv_bn(x, max(1, int(filters * alpha)), 1, 1, f"block{i}_pw", l2)
    return _pool_head(x, inputs, num_classes, l2, "mobilenet_v1")


def _check_alpha(alpha: Any) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 4:
        raise UsageError(f"mobilenet-v1 option alpha (width multiplier) must be in (0, 4]. Received: {alpha!r}.")


OPTION_CHECKS: dict[str, Callable[[Any], None]] = {"alpha": _check_alpha}
MODEL_OPTION_CHECKS: dict[str, dict[str, Callable[[Any], None]]] = {}  # per model, before OPTION_CHECKS (backbones.py)


def model_options(name: str) -> dict[str, Any]:
    """The keyword options of zoo model ``name`` with their defaults (``{"alpha": 0.25}``)."""
    params = inspect.signature(MODELS.get(name)).parameters
    return {k: p.default for k, p in params.items() if k not in ("input_shape", "num_classes", "l2")}


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """UsageError for an option zoo model ``name`` does not take."""
    known = model_options(name)
    checks = {**OPTION_CHECKS, **MODEL_OPTION_CHECKS.get(name, {})}
    for key in options:
        if key not in known:
            takes = ", ".join(f"{k} (default {v})" for k, v in known.items()) or "none"
            raise UsageError(f"Model {name!r} has no option {key!r}. Its options: {takes}.")
        checks.get(key, lambda v: None)(options[key])


def build_model(name: str, input_shape: tuple[int, ...] = (28, 28, 1), num_classes: int = 10, l2: float = 0.0,
                **options: Any):
    """Build the zoo model ``name`` for ``input_shape`` and ``num_classes`` (``options``: the model's own)."""
    builder = MODELS.get(name)
    check_options(name, options)
    if l2 < 0:
        raise UsageError(f"l2 must be >= 0. Received: {l2}.")
    if num_classes < 2:
        raise UsageError(f"num_classes must be >= 2. Received: {num_classes}.")
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise UsageError(f"Model {name!r} needs an input shape (height, width, channels) of positive "
                         f"integers. Received: {shape}.")
    try:
        return builder(shape, num_classes, l2=l2, **options)
    except ValueError as e:
        raise UsageError(f"Model {name!r} does not fit input shape {shape}: {str(e).splitlines()[0]}") from None
