"""Per-layer sensitivity, measured once on the input model before the search: the validation
accuracy lost when ONE layer alone loses channels (L1-smallest filters removed, as the channel
stage does) or is magnitude-pruned, with no fine-tune, and the parameters that channel probe
saves. The search backs off first the layers that lose the most accuracy per parameter saved
and narrows the others hardest."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from edgekit.data import Dataset
from edgekit.optimize.space import Space
from edgekit.progress import counted


@dataclasses.dataclass(frozen=True)
class LayerSensitivity:
    """Validation drop (points) of one layer's probes; None where the knob does not apply."""

    layer: str
    params: int
    channels_drop_pt: float | None  # channel_probe of its filters/units removed
    prune_drop_pt: float | None  # prune_probe of its kernel zeroed (smallest magnitudes)
    channels_params_saved: int | None = None  # parameters that probe removes (its own and its consumers')

    @property
    def drop_per_param(self) -> float:
        """Channel probe drop per parameter it saves: what backing this layer off buys per byte given up."""
        if self.channels_drop_pt is None:
            return float("-inf")
        return self.channels_drop_pt / max(self.channels_params_saved or 1, 1)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of a Keras model on ``(x, y)`` as a fraction."""
    from edgekit.runtimes.keras import keras_predict

    return float((np.asarray(keras_predict(model, x, 256)).argmax(1) == y).mean())  # a split: a batch at a time


def magnitude_pruned(kernel: np.ndarray, sparsity: float) -> np.ndarray:
    """``kernel`` with its ``sparsity`` fraction of smallest-magnitude weights set to zero."""
    flat = np.abs(kernel).reshape(-1)
    n = int(round(sparsity * flat.size))
    if n == 0:
        return kernel.copy()
    cut = np.argsort(flat, kind="stable")[:n]
    out = kernel.copy().reshape(-1)
    out[cut] = 0
    return out.reshape(kernel.shape)


def measure(model, dataset: Dataset, space: Space, channel_probe: float = 0.5, prune_probe: float = 0.9,
            progress: Callable[[str], None] | None = None) -> list[LayerSensitivity]:
    """Every layer's probes on the validation split; ranked most sensitive first (channel drop, then
    prune drop)."""
    from edgekit.compress import channels as narrowing
    from edgekit.compress.layers import clone, kernel_of

    model = clone(model)  # the probes write into its weights: never into the caller's model
    say = progress or (lambda m: None)
    x, y = dataset.x_val, dataset.y_val
    base = accuracy(model, x, y)
    total = int(model.count_params())
    layers = [n for n in space.params if n in space.narrowable or n in space.prunable]
    rows = []
    for i, name in enumerate(layers, 1):
        ch = pr = saved = None
        if name in space.narrowable:
            narrow = narrowing.prune_channels(model, {name: channel_probe})[0]
            ch = 100.0 * (base - accuracy(narrow, x, y))
            saved = total - int(narrow.count_params())
        if name in space.prunable:
            layer = model.get_layer(name)
            kernel = kernel_of(layer)
            original = kernel.numpy()
            try:
                kernel.assign(magnitude_pruned(original, prune_probe))
                pr = 100.0 * (base - accuracy(model, x, y))
            finally:
                kernel.assign(original)
        rows.append(LayerSensitivity(name, int(space.params.get(name, 0)), ch, pr, saved))
        say(counted("sensitivity", i, len(layers), f"sensitivity {i}/{len(layers)}: {name}: channels "
                    f"-{channel_probe:g} {_pt(ch)}, prune {prune_probe:g} {_pt(pr)}"))
    return rank(rows)


def rank(rows: list[LayerSensitivity]) -> list[LayerSensitivity]:
    """Most sensitive first: by the channel probe's drop per parameter it saves (a layer that costs much
    accuracy for few bytes, like a first conv that starves everything after it, is backed off first),
    then by the prune probe's drop; layers without a channel probe last."""
    return sorted(rows, key=lambda r: (-r.drop_per_param, -(r.prune_drop_pt or 0.0), r.layer))


def _pt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.2f} pt"
