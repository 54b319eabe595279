"""Resolution (MobileNet's resolution multiplier, inside the model): the stem convolution's stride
multiplied, so every later layer computes on 1/factor² of the positions while the model still takes
the same input.

On a small backbone the high-resolution layers dominate latency, and narrowing them gains little
(their widths are already near the 8-channel minimum): on keras.applications MobileNetV2 α=0.35 at
96×96, int8 on LiteRT, the stem at stride 4 instead of 2 ran 3.6× faster, α=0.1 only 1.14×
(docs/compress.md, "Resolution").
The kernels keep their shapes and values; a fine-tune relearns what the coarser sampling changes.

A model qualifies when its first layer with a kernel is a Conv2D and every tensor after it keeps
its spatial size free: the features end in global pooling (keras.applications backbones) or in a pooling
window over the whole map (MLPerf Tiny's, which becomes global pooling), not in a Flatten or Reshape
whose Dense expects one size. Anything else gets one line naming the layer.
"""
from __future__ import annotations

from edgekit.errors import UsageError

# layers that work at any spatial size (the ones after the stem may only be these while spatial)
FREE = frozenset({
    "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "BatchNormalization", "Activation", "ReLU", "LeakyReLU",
    "ELU", "PReLU", "Softmax", "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "ZeroPadding2D",
    "MaxPooling2D", "AveragePooling2D", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
    "Concatenate", "Rescaling", "Normalization", "Identity", "ActivityRegularization",
})
ENDS = frozenset({"GlobalAveragePooling2D", "GlobalMaxPooling2D"})  # spatial size gone: anything may follow
FACTORS = (1, 2)


def _spatial(t) -> bool:
    return len(t.shape) == 4


def _whole_map(layer) -> bool:
    """True for a pooling layer whose window is its whole input map (global pooling, MLPerf Tiny style)."""
    cfg = layer.get_config()
    return tuple(layer.output.shape[1:3]) == (1, 1) and cfg.get("padding") == "valid" and \
        tuple(cfg.get("pool_size", ())) == tuple(layer.input.shape[1:3])


def stem(model) -> str:
    """The layer whose stride :func:`downsample` multiplies: the first Conv2D, when nothing after it
    depends on the spatial size. Raises UsageError naming what stops it."""
    return _plan(model)[0]


def _plan(model) -> tuple[str, tuple[str, ...]]:
    """(the stem, the pooling layers over a whole map, which become global pooling)."""
    found, pools = None, []
    done: set[str] = set()  # layers whose output no longer depends on the map size (after global pooling)
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        ins = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        spatial = [t._keras_history.layer.name for t in ins if _spatial(t)]
        if not spatial:
            continue
        if found is None:
            if kind == "Conv2D":
                found = layer.name
            elif kind not in FREE:
                raise UsageError(f"Resolution: the model has no Conv2D stem before {layer.name!r} ({kind}). "
                                 "Only a model whose first layer with a kernel is a Conv2D can compute at a "
                                 "lower resolution.")
            continue
        if all(n in done for n in spatial) or kind in ENDS:
            done.add(layer.name)
        elif kind in ("AveragePooling2D", "MaxPooling2D") and _whole_map(layer):
            pools.append(layer.name)
            done.add(layer.name)
        elif kind not in FREE:
            raise UsageError(f"Resolution: {layer.name!r} ({kind}) fixes the spatial size after the stem "
                             f"{found!r}, so the stem cannot stride further. Only a model whose features end in "
                             "global pooling (such as a keras.applications backbone) can compute at a lower "
                             "resolution.")
    if found is None:
        raise UsageError("Resolution: the model has no Conv2D: there is no stem to stride.")
    return found, tuple(pools)


def blocker(model) -> str | None:
    """Why ``model`` cannot compute at a lower resolution (None: it can): the strided copy is built
    and its shapes checked, its weights left unset."""
    try:
        _strided(model, 2)
    except UsageError as e:
        return str(e)
    return None


def downsample(model, factor: int):
    """A copy of ``model`` whose stem strides ``factor`` times further (same layers, names and weights;
    the same input and output shapes). ``factor`` 1: a plain copy."""
    new = _strided(model, factor)
    for layer in model.layers:
        if layer.weights:
            new.get_layer(layer.name).set_weights(layer.get_weights())
    return new


def _strided(model, factor: int):
    """:func:`downsample`'s copy before its weights are set (fresh initial values)."""
    from edgekit._lazy import keras

    if factor not in FACTORS:
        raise UsageError(f"downsample must be one of {', '.join(map(str, FACTORS))}. Received: {factor!r}.")
    name, pools = _plan(model)
    L = keras().layers

    def stride(layer):
        cfg = layer.get_config()
        if layer.name in pools:  # a window over the whole map, at any size: global pooling, same (1, 1, C) output
            kind = L.GlobalAveragePooling2D if type(layer).__name__ == "AveragePooling2D" else L.GlobalMaxPooling2D
            return kind(keepdims=True, name=layer.name)
        if layer.name == name:
            cfg["strides"] = tuple(int(s) * factor for s in cfg["strides"])
        return type(layer).from_config(cfg)

    try:
        new = keras().models.clone_model(model, clone_function=stride)
    except ValueError as e:  # a map shrank below a kernel: Keras refuses the shapes
        raise UsageError(f"Resolution: the stem {name!r} at {factor}x its stride leaves a feature map too small "
                         f"for a later layer. Received: {str(e).splitlines()[0][:200]}") from None
    if [tuple(t.shape) for t in new.outputs] != [tuple(t.shape) for t in model.outputs]:
        raise UsageError(f"Resolution: the stem {name!r} at {factor}x its stride changes the model's output "
                         f"shape. Received: {[tuple(t.shape) for t in new.outputs]}.")
    return new
