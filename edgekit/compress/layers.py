"""Facts about a model's layers that the compression stages share: which layers hold a
kernel, how to reach it through tfmot wrappers, cloning, and resolving layer names."""
from __future__ import annotations

from typing import Any, Iterable, Iterator

import numpy as np

from edgekit.errors import InputError, UsageError
from edgekit.registry import did_you_mean

KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel")
WRAPPER_TYPES = ("PruneLowMagnitude", "ClusterWeights", "ClusterWeightsRNN", "ClusterWeightsMHA",
                 "QuantizeWrapper", "QuantizeWrapperV2", "QuantizeLayer", "QuantizeAnnotate")


def clone(model):
    """A copy of ``model`` with its own variables (tfmot wrappers share weights otherwise)."""
    from edgekit._lazy import keras

    c = keras().models.clone_model(model)
    c.set_weights(model.get_weights())
    return c


def _short(name: str) -> str:
    return name.split(":")[0].split("/")[-1]


def base_layer(layer):
    """The layer inside tfmot wrappers (or the layer itself)."""
    while type(layer).__name__ in WRAPPER_TYPES and hasattr(layer, "layer"):
        layer = layer.layer
    return layer


def base_name(layer) -> str:
    return base_layer(layer).name


def kernel_of(layer):
    """The kernel variable of ``layer`` (looked up through wrappers), or None."""
    inner = base_layer(layer)
    # QAT wrappers keep the float kernel in their weight list (the inner attribute may
    # hold the fake-quantized tensor); search the wrapper's weights by name first.
    for w in getattr(layer, "weights", []):
        if _short(w.name) in KERNEL_NAMES and w.shape.rank and w.shape.rank >= 2:
            return w
    for n in KERNEL_NAMES:
        v = getattr(inner, n, None)
        if v is not None and hasattr(v, "shape") and len(v.shape) >= 2:
            return v
    return None


def kernel_layers(model) -> list[str]:
    """Names (as the user sees them) of the layers that hold a kernel, in model order."""
    return [base_name(l) for l in model.layers if kernel_of(l) is not None]


def iter_kernels(model) -> Iterator[tuple[str, np.ndarray]]:
    """``(layer name, kernel values)`` for every layer with a kernel."""
    for l in model.layers:
        k = kernel_of(l)
        if k is not None:
            yield base_name(l), np.asarray(k.numpy() if hasattr(k, "numpy") else k)


def check_plain_keras(model) -> None:
    """InputError unless ``model`` is a Sequential/functional tf_keras model without tfmot wrappers."""
    from edgekit._lazy import keras

    k = keras()
    if not isinstance(model, k.Model):
        kind = type(model).__module__.split(".")[0] + "." + type(model).__name__
        hint = " (edgekit uses tf_keras; a Keras 3 model is not supported by tfmot)" if "keras" in kind else ""
        raise InputError(f"Expected a tf_keras Model to compress{hint}. Received: {kind}.")
    if not (isinstance(model, k.Sequential) or getattr(model, "_is_graph_network", False)):
        raise InputError(
            f"Model {model.name!r} is a subclassed Keras model; tfmot compresses only Sequential and "
            "functional models."
        )
    wrapped = [(l.name, type(l).__name__) for l in model.layers if type(l).__name__ in WRAPPER_TYPES]
    if wrapped:
        name, kind = wrapped[0]
        what = "quantization-aware (QAT)" if "Quantize" in kind else "pruning/clustering-wrapped (not stripped)"
        raise InputError(
            f"Model {model.name!r} is already {what}: layer {name!r} is a {kind}. "
            "Compress the float model it came from."
        )
    if not kernel_layers(model):
        raise InputError(f"Model {model.name!r} has no conv/dense kernels to compress.")


def resolve_names(model, names: Iterable[str], option: str, allowed: list[str] | None = None) -> None:
    """UsageError for a name that is not a layer of ``model`` (listing the real ones) or not in ``allowed``."""
    all_names = [l.name for l in model.layers]
    allowed = kernel_layers(model) if allowed is None else allowed
    for n in names:
        if n not in all_names:
            raise UsageError(
                f"{option}: model {model.name!r} has no layer {n!r}. Its layers are: "
                f"{', '.join(all_names)}.{did_you_mean(n, all_names)}"
            )
        if n not in allowed:
            raise UsageError(
                f"{option}: layer {n!r} ({type(model.get_layer(n)).__name__}) has no weights this stage can "
                f"compress. Choose among: {', '.join(allowed)}."
            )


def layer_params(model) -> dict[str, int]:
    """Kernel sizes per layer name."""
    return {n: int(k.size) for n, k in iter_kernels(model)}


def describe(obj: Any) -> str:
    return type(obj).__name__
