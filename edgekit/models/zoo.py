"""The model zoo: the seed MNIST CNN and structural variants, resolved by name.

Every builder takes the input shape and class count from the data and an optional L2
penalty ``l2`` added to the loss as ``l2 * sum(w**2)`` for each conv/dense kernel.
"""
from __future__ import annotations

from typing import Any, Callable

from edgekit._lazy import keras
from edgekit.errors import UsageError
from edgekit.registry import Registry

Builder = Callable[..., Any]
MODELS: Registry[Builder] = Registry("model")
DESCRIPTIONS: dict[str, str] = {}


def _describe(name: str, text: str) -> Callable[[Builder], Builder]:
    DESCRIPTIONS[name] = text
    return MODELS.register(name)


def _reg(l2: float) -> dict[str, Any]:
    return {"kernel_regularizer": keras().regularizers.l2(l2)} if l2 else {}


def _head(layers: list, num_classes: int, l2: float, hidden: int | None = 64) -> list:
    L = keras().layers
    if hidden:
        layers.append(L.Dense(hidden, activation="relu", name="dense1", **_reg(l2)))
    layers.append(L.Dense(num_classes, activation="softmax", name="output", **_reg(l2)))
    return layers


def _sequential(name: str, input_shape: tuple[int, ...], layers: list):
    k = keras()
    return k.Sequential([k.Input(shape=input_shape, name="image"), *layers], name=name)


@_describe("cnn", "the seed network: Conv32-Pool-Conv64-Pool-Conv64-Dense64-Dense")
def cnn(input_shape: tuple[int, ...], num_classes: int, l2: float = 0.0):
    L = keras().layers
    layers = [
        L.Conv2D(32, 3, activation="relu", name="conv1", **_reg(l2)),
        L.MaxPooling2D(2, name="pool1"),
        L.Conv2D(64, 3, activation="relu", name="conv2", **_reg(l2)),
        L.MaxPooling2D(2, name="pool2"),
        L.Conv2D(64, 3, activation="relu", name="conv3", **_reg(l2)),
        L.Flatten(name="flatten"),
    ]
    return _sequential("cnn", input_shape, _head(layers, num_classes, l2))


@_describe("cnn-small", "fewer layers: Conv16-Pool-Conv32-Pool-Dense")
def cnn_small(input_shape: tuple[int, ...], num_classes: int, l2: float = 0.0):
    L = keras().layers
    layers = [
        L.Conv2D(16, 3, activation="relu", name="conv1", **_reg(l2)),
        L.MaxPooling2D(2, name="pool1"),
        L.Conv2D(32, 3, activation="relu", name="conv2", **_reg(l2)),
        L.MaxPooling2D(2, name="pool2"),
        L.Flatten(name="flatten"),
    ]
    return _sequential("cnn_small", input_shape, _head(layers, num_classes, l2, hidden=None))


@_describe("ds-cnn", "depthwise-separable convs: Conv32-Pool-DW3x3+PW64-Pool-DW3x3+PW64-Dense64-Dense")
def ds_cnn(input_shape: tuple[int, ...], num_classes: int, l2: float = 0.0):
    L = keras().layers
    reg = _reg(l2)
    dw_reg = {"depthwise_regularizer": reg["kernel_regularizer"]} if reg else {}
    layers = [
        L.Conv2D(32, 3, activation="relu", name="conv1", **reg),
        L.MaxPooling2D(2, name="pool1"),
        L.DepthwiseConv2D(3, activation="relu", name="dwconv2", **dw_reg),
        L.Conv2D(64, 1, activation="relu", name="pwconv2", **reg),
        L.MaxPooling2D(2, name="pool2"),
        L.DepthwiseConv2D(3, activation="relu", name="dwconv3", **dw_reg),
        L.Conv2D(64, 1, activation="relu", name="pwconv3", **reg),
        L.Flatten(name="flatten"),
    ]
    return _sequential("ds_cnn", input_shape, _head(layers, num_classes, l2))


@_describe("mlp", "dense-only baseline: Flatten-Dense128-Dense64-Dense")
def mlp(input_shape: tuple[int, ...], num_classes: int, l2: float = 0.0):
    L = keras().layers
    layers = [L.Flatten(name="flatten"), L.Dense(128, activation="relu", name="dense0", **_reg(l2))]
    return _sequential("mlp", input_shape, _head(layers, num_classes, l2))


def build_model(name: str, input_shape: tuple[int, ...] = (28, 28, 1), num_classes: int = 10, l2: float = 0.0):
    """Build the zoo model ``name`` for ``input_shape`` and ``num_classes``."""
    builder = MODELS.get(name)
    if l2 < 0:
        raise UsageError(f"l2 must be >= 0. Received: {l2}.")
    if num_classes < 2:
        raise UsageError(f"num_classes must be >= 2. Received: {num_classes}.")
    try:
        return builder(tuple(input_shape), num_classes, l2=l2)
    except ValueError as e:
        raise UsageError(f"Model {name!r} does not fit input shape {tuple(input_shape)}: {e}") from None
