"""Structured (channel) pruning: remove whole filters/units and rewire what follows, so the
result is a dense, narrower model with really fewer parameters and MACs.

Importance of a filter (Conv2D) or unit (Dense): the L1 norm of its weights (Li et al. 2017,
"Pruning Filters for Efficient ConvNets"). It is data-free (no calibration batch, so the same
model always gives the same mask), deterministic (ties go to the lower index), cheap, and
the standard baseline that data-driven criteria are measured against. When a
BatchNormalization consumes the layer's output directly, the norm is scaled by
``|gamma| / sqrt(moving_var + eps)``: that is the L1 norm of the *folded* filter, the one
the deployed model runs (TFLite folds BN into the conv), so a filter that BN shrinks to
nothing ranks as the nothing it is. Layers tied by an Add (or another element-wise merge)
must keep the same channels: they are pruned as one group with a shared mask, ranked by the
sum of the members' scores, each normalised by its mean so that no member dominates.

Rewiring: the next Conv2D/Dense loses the matching input channels; BatchNormalization and
DepthwiseConv2D (depth multiplier 1) lose them too and pass them on; pooling, activations,
dropout and padding pass them on; Flatten -> Dense removes the kernel rows of the removed
channels at every spatial position (Flatten order is H, W, C); Concatenate joins the
channel lists of its inputs. Any other layer that sees a pruned tensor stops the run with
one line naming it. Channels that reach a model output (the classifier) are never removed.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

from edgekit.compress.layers import resolve_names
from edgekit.errors import UsageError

# layers whose output channels are their input channels, unchanged and without weights
PASS_THROUGH = frozenset({
    "Activation", "ReLU", "LeakyReLU", "ELU", "ThresholdedReLU", "MaxPooling2D", "AveragePooling2D",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Dropout", "SpatialDropout2D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "ZeroPadding2D", "Cropping2D", "UpSampling2D", "ActivityRegularization",
})
MERGE_SAME = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"})
PRODUCERS = frozenset({"Conv2D", "Dense"})


@dataclasses.dataclass(frozen=True)
class Chan:
    """The channels (last axis) of a tensor: segments ``(source layer or None, count)``;
    ``spatial`` is the number of positions a Flatten folded in front of them (H*W)."""

    segments: tuple[tuple[str | None, int], ...]
    spatial: int | None = None

    @property
    def sources(self) -> list[str]:
        return [s for s, _ in self.segments if s is not None]


@dataclasses.dataclass
class Graph:
    """What the channel walk found: sources, groups (union-find), inputs per layer, blockers."""

    sizes: dict[str, int] = dataclasses.field(default_factory=dict)  # source -> channels
    parent: dict[str, str] = dataclasses.field(default_factory=dict)
    inputs: dict[str, list[Chan]] = dataclasses.field(default_factory=dict)
    blocked: dict[str, str] = dataclasses.field(default_factory=dict)  # source -> layer that stops it
    fixed: dict[str, str] = dataclasses.field(default_factory=dict)  # source -> why it must stay whole

    def find(self, s: str) -> str:
        while self.parent[s] != s:
            s = self.parent[s]
        return s

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for s in self.sizes:
            out.setdefault(self.find(s), []).append(s)
        return out


@dataclasses.dataclass(frozen=True)
class ChannelPlan:
    """Which channels each pruned source keeps (sorted indices), and the ratio asked of it."""

    keep: dict[str, np.ndarray]
    ratios: dict[str, float]
    groups: dict[str, list[str]]
    sizes: dict[str, int]

    def removed(self) -> dict[str, int]:
        """Channels removed per pruned layer."""
        return {n: int(self.sizes[n] - len(k)) for n, k in self.keep.items()}


def _inbound(layer) -> list:
    """The layers feeding ``layer`` (in input order)."""
    ins = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
    return [t._keras_history.layer for t in ins]


def _fixed_chan(n: int) -> Chan:
    return Chan(((None, int(n)),))


def walk(model) -> Graph:
    """Follow every tensor's channels from the producers (Conv2D/Dense) to their consumers."""
    g = Graph()
    out: dict[str, Chan] = {}

    def block(chans: list[Chan], layer) -> None:
        for c in chans:
            for s in c.sources:
                g.blocked.setdefault(s, f"{layer.name!r} ({type(layer).__name__})")

    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            out[layer.name] = _fixed_chan(layer.output.shape[-1])
            continue
        if len(getattr(layer, "_inbound_nodes", [])) > 1:
            raise UsageError(f"Channel pruning: layer {layer.name!r} is used more than once (a shared layer); "
                             "edgekit cannot rewire shared layers.")
        ins = [out.get(p.name) or _fixed_chan(p.output.shape[-1]) for p in _inbound(layer)]
        g.inputs[layer.name] = ins
        n_out = int(layer.output.shape[-1]) if not isinstance(layer.output, (list, tuple)) else 0
        cfg = layer.get_config()
        if kind in PRODUCERS and cfg.get("groups", 1) == 1:
            if ins[0].spatial is not None and kind != "Dense":
                block(ins, layer)
            g.sizes[layer.name] = n_out
            g.parent[layer.name] = layer.name
            out[layer.name] = Chan(((layer.name, n_out),))
        elif kind in PASS_THROUGH or (kind == "DepthwiseConv2D" and cfg.get("depth_multiplier", 1) == 1):
            out[layer.name] = ins[0]
        elif kind == "BatchNormalization" and _last_axis(cfg.get("axis"), len(layer.input.shape)):
            out[layer.name] = ins[0]
        elif kind == "Flatten" and ins[0].spatial is None and len(layer.input.shape) > 2:
            out[layer.name] = dataclasses.replace(ins[0], spatial=int(np.prod(layer.input.shape[1:-1])))
        elif kind == "Concatenate" and _last_axis(cfg.get("axis"), len(layer.output.shape)) \
                and all(c.spatial is None for c in ins):
            out[layer.name] = Chan(tuple(s for c in ins for s in c.segments))
        elif kind in MERGE_SAME:
            out[layer.name] = _merge(g, ins, layer)
        else:  # a layer edgekit cannot rewire: its inputs stay whole if anyone asks to prune them
            block(ins, layer)
            out[layer.name] = _fixed_chan(n_out)
    for t in model.outputs:
        for s in out[t._keras_history.layer.name].sources:
            g.fixed.setdefault(s, "it feeds the model's output")
    return g


def _last_axis(axis: Any, rank: int) -> bool:
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    return axis in (-1, rank - 1)


def _merge(g: Graph, ins: list[Chan], layer) -> Chan:
    """Add/Multiply/...: the inputs must keep the same channels -- tie their sources into one group."""
    shapes = {tuple(n for _, n in c.segments) for c in ins}
    if len(shapes) == 1 and all(c.spatial == ins[0].spatial for c in ins):
        for parts in zip(*(c.segments for c in ins)):
            srcs = [s for s, _ in parts if s is not None]
            for s in srcs[1:]:
                g.union(srcs[0], s)
            if len(srcs) < len(parts):  # tied to a tensor that cannot shrink (e.g. the input image)
                for s in srcs:
                    g.fixed.setdefault(s, f"{layer.name!r} adds it to channels that cannot be pruned")
        return ins[0]
    for c in ins:
        for s in c.sources:
            g.fixed.setdefault(s, f"{layer.name!r} merges it with differently split channels")
    return _fixed_chan(layer.output.shape[-1])


def _ratio_spec(channels: float | Mapping[str, float] | None) -> tuple[float | None, dict[str, float]]:
    if channels is None:
        return None, {}
    if isinstance(channels, Mapping):
        return None, dict(channels)
    return float(channels), {}


def importance(model, g: Graph, name: str) -> np.ndarray:
    """L1 norm of each output filter/unit of ``name`` (scaled by a BN that follows it directly)."""
    layer = model.get_layer(name)
    k = np.asarray(layer.kernel.numpy(), dtype=np.float64)
    score = np.abs(k).reshape(-1, k.shape[-1]).sum(0)
    consumers = [l for l in model.layers if l.name in g.inputs and name in [p.name for p in _inbound(l)]]
    if len(consumers) == 1 and type(consumers[0]).__name__ == "BatchNormalization":
        bn = consumers[0]
        gamma = np.asarray(bn.gamma.numpy(), np.float64) if bn.gamma is not None else 1.0
        score = score * np.abs(gamma) / np.sqrt(np.asarray(bn.moving_variance.numpy(), np.float64) + bn.epsilon)
    return score


def plan_channels(model, channels: float | Mapping[str, float] | None,
                  skip_layers: tuple[str, ...] = ()) -> ChannelPlan:
    """Resolve ``channels`` (a fraction removed everywhere, or per layer) into kept indices.

    The model-wide value applies to every Conv2D/Dense whose channels may shrink, minus
    ``skip_layers``; layers whose channels reach a model output (the classifier) are left
    whole. A per-layer value applies to that layer's whole group."""
    default, per_layer = _ratio_spec(channels)
    g = walk(model)
    resolve_names(model, per_layer, "channels (--channels NAME=RATIO)", list(g.sizes))
    for name in per_layer:
        if name in g.fixed:
            raise UsageError(f"channels: layer {name!r} cannot lose channels: {g.fixed[name]}. "
                             f"Received: {name}={per_layer[name]:g}.")
    keep: dict[str, np.ndarray] = {}
    ratios: dict[str, float] = {}
    groups = g.groups()
    for root, members in groups.items():
        explicit = {per_layer[m] for m in members if m in per_layer}
        if len(explicit) > 1:
            raise UsageError(f"channels: layers {', '.join(members)} feed one Add and keep the same channels; "
                             f"give them one ratio. Received: {sorted(explicit)}.")
        if explicit:
            ratio = explicit.pop()
        elif default is None or any(m in skip_layers or m in g.fixed for m in members):
            continue
        else:
            ratio = default
        n = g.sizes[root]
        n_remove = int(round(ratio * n))
        if n_remove >= n:
            raise UsageError(f"channels: removing {ratio:g} of the {n} channels of {' + '.join(members)} leaves "
                             f"none; use a smaller ratio. Received: {ratio:g}.")
        if n_remove == 0:
            continue
        for m in members:
            if m in g.blocked:
                raise UsageError(f"channels: layer {g.blocked[m]} follows pruned layer {m!r} and edgekit cannot "
                                 f"remove channels through it; leave {m!r} whole (--skip-layer {m}).")
        score = sum(s / (s.mean() or 1.0) for s in (importance(model, g, m) for m in members))
        kept = np.sort(np.argsort(-score, kind="stable")[: n - n_remove])
        for m in members:
            keep[m], ratios[m] = kept, float(ratio)
    return ChannelPlan(keep, ratios, {r: m for r, m in groups.items() if len(m) > 1}, dict(g.sizes))


def _indices(chans: Chan, keep: dict[str, np.ndarray]) -> np.ndarray:
    """Indices into a layer's input (last axis, or Flatten's rows) that survive."""
    parts, off = [], 0
    for s, n in chans.segments:
        parts.append(off + (keep[s] if s in keep else np.arange(n)))
        off += n
    idx = np.concatenate(parts)
    if chans.spatial is not None:
        idx = (np.arange(chans.spatial)[:, None] * off + idx[None, :]).reshape(-1)
    return idx


def _sliced_weights(layer, ins: list[Chan], keep: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The layer's weights without the removed input/output channels."""
    w = layer.get_weights()
    kind = type(layer).__name__
    if kind not in PRODUCERS | {"BatchNormalization", "DepthwiseConv2D"} or not w:
        return w
    i = _indices(ins[0], keep)
    if kind == "BatchNormalization":
        return [v[i] for v in w]
    if kind == "DepthwiseConv2D":
        return [w[0][:, :, i, :], *(v[i] for v in w[1:])]
    o = keep.get(layer.name, np.arange(w[0].shape[-1]))
    kernel = np.take(np.take(w[0], i, axis=-2), o, axis=-1)
    return [kernel, *(v[o] for v in w[1:])]


def apply_channels(model, plan: ChannelPlan):
    """A new, narrower model: kept filters/units only, the same layer names and connections."""
    from edgekit._lazy import keras

    g = walk(model)

    def narrow(layer):
        cfg = layer.get_config()
        if layer.name in plan.keep:
            cfg["filters" if "filters" in cfg else "units"] = int(len(plan.keep[layer.name]))
        return type(layer).from_config(cfg)

    new = keras().models.clone_model(model, clone_function=narrow)
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        new.get_layer(layer.name).set_weights(_sliced_weights(layer, g.inputs[layer.name], plan.keep))
    return new


def prune_channels(model, channels: float | Mapping[str, float], skip_layers: tuple[str, ...] = ()):
    """Plan and apply in one call; returns ``(narrow model, plan)``."""
    p = plan_channels(model, channels, skip_layers)
    return apply_channels(model, p), p
