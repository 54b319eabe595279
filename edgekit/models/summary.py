"""Model facts computed from layer shapes: parameters and multiply-accumulates per image."""
from __future__ import annotations

from typing import Any

import numpy as np


def _shape(t) -> tuple[int, ...]:
    return tuple(int(d) for d in t.shape[1:])


def layer_macs(layer) -> int:
    """Multiply-accumulates of one layer for one image (0 for layers that do none)."""
    kind = type(layer).__name__
    inner = getattr(layer, "layer", None)  # tfmot wrappers
    if inner is not None and kind.endswith("Wrapper"):
        return layer_macs(inner) if hasattr(inner, "output") else 0
    try:
        out, inp = _shape(layer.output), _shape(layer.input)
    except (AttributeError, ValueError):
        return 0
    if kind == "Conv2D":
        kh, kw = layer.kernel_size
        return int(np.prod(out)) * kh * kw * inp[-1] // layer.groups
    if kind == "DepthwiseConv2D":
        kh, kw = layer.kernel_size
        return int(np.prod(out)) * kh * kw
    if kind == "SeparableConv2D":
        kh, kw = layer.kernel_size
        mult = layer.depth_multiplier
        return int(np.prod(out[:-1])) * inp[-1] * mult * (kh * kw + out[-1])
    if kind == "Dense":
        return int(np.prod(inp)) * out[-1]
    return 0


def model_summary(model) -> dict[str, Any]:
    """Parameters (total, trainable) and MACs per image, per layer and overall."""
    layers = []
    for layer in model.layers:
        layers.append(
            {
                "name": layer.name,
                "type": type(layer).__name__,
                "params": int(layer.count_params()),
                "macs": layer_macs(layer),
                "output_shape": list(_shape(layer.output)) if hasattr(layer, "output") else None,
            }
        )
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return {
        "name": model.name,
        "params": int(model.count_params()),
        "trainable_params": trainable,
        "macs": int(sum(l["macs"] for l in layers)),
        "layers": layers,
    }
