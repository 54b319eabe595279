"""Map the tensors of a converted .tflite back to the Keras layers they come from.

The TFLite converter names an op's output tensor after the TensorFlow ops fused into it,
e.g. ``"model/conv2d_1/Relu;model/conv2d_1/BiasAdd"`` or ``"sequential/re_lu/Relu;
sequential/conv/Conv2D"`` (a Conv+BN+ReLU: the BatchNormalization is folded away and not
named). The model's output tensor is named ``StatefulPartitionedCall:0``. A tensor is
mapped to the *last* Keras layer it names (its output is that layer's output); the group
of layers it covers is that layer and the single-input chain before it down to the
previous group (so the folded BN of a Conv+BN+ReLU joins its group).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Sequence

from edgekit.errors import UsageError


@dataclasses.dataclass(frozen=True)
class LayerGroup:
    """One TFLite activation tensor and the Keras layers it stands for."""

    tensor: str  # the tensor's name in the flatbuffer (the converter's denylist node name)
    output_layer: str  # the Keras layer whose output this tensor is
    layers: tuple[str, ...]  # every Keras layer the op(s) cover, in model order

    @property
    def name(self) -> str:
        return "+".join(self.layers)


def named_layers(tensor_name: str, names: dict[str, int]) -> list[str]:
    found = []
    for part in tensor_name.split(";"):
        bits = part.split("/")
        for b in bits[1:2]:  # "<model name>/<layer name>/<tf op>"
            if b in names and b not in found:
                found.append(b)
    return found


def inbound_layers(layer: Any) -> list[Any]:
    nodes = getattr(layer, "_inbound_nodes", None) or []
    if not nodes:
        return []
    return list(nodes[0].inbound_layers) if isinstance(nodes[0].inbound_layers, (list, tuple)) else [
        nodes[0].inbound_layers]


def layer_groups(model: Any, tensors: Iterable[tuple[str, Sequence[int]]],
                 outputs: Sequence[str] = ()) -> list[LayerGroup]:
    """The groups of ``model``'s layers behind the activation ``tensors`` ((name, shape)
    pairs of non-constant op outputs, in graph order); ``outputs`` are the names of the
    graph's output tensors (mapped to the model's output layers). A tensor whose shape
    differs from its layer's output shape (batch aside) is left out."""
    order = {layer.name: i for i, layer in enumerate(model.layers)}
    out_layers = [n.split("/")[0] for n in getattr(model, "output_names", [])] or [model.layers[-1].name]
    found: dict[str, str] = {}  # output layer -> tensor
    for name, shape in tensors:
        if name in outputs:
            named = [out_layers[list(outputs).index(name)]] if len(outputs) == len(out_layers) else []
        else:
            named = named_layers(name, order)
        if not named:
            continue
        last = max(named, key=order.__getitem__)
        if not _same_shape(model.get_layer(last), shape):
            continue
        found[last] = name  # a later tensor of the same layer (e.g. after a requantize) wins
    groups = []
    for last, tensor in found.items():
        chain, layer = [last], model.get_layer(last)
        while True:
            ins = inbound_layers(layer)
            if len(ins) != 1 or ins[0].name in found or ins[0].__class__.__name__ == "InputLayer":
                break
            layer = ins[0]
            if len(getattr(layer, "_outbound_nodes", []) or []) > 1:
                break  # feeds several branches: not folded into one of them
            chain.append(layer.name)
        groups.append(LayerGroup(tensor, last, tuple(sorted(chain, key=order.__getitem__))))
    return sorted(groups, key=lambda g: order[g.output_layer])


def _same_shape(layer: Any, shape: Sequence[int]) -> bool:
    want = layer.output_shape
    if isinstance(want, list):
        return False
    return [d for d in want[1:]] == [int(d) for d in list(shape)[1:]]


def groups_of_graph(model: Any, graph: Any) -> list[LayerGroup]:
    """:func:`layer_groups` of a :class:`~edgekit.formats.tflite_flatbuffer.TFLiteGraph`."""
    produced = {i for op in graph.ops for i in op.outputs}
    tensors = [(t.name, t.shape) for t in graph.tensors if t.index in produced and not t.is_constant]
    return layer_groups(model, tensors, [t.name for t in graph.output_tensors])


def select_groups(groups: Sequence[LayerGroup], layers: Sequence[str], model: Any, option: str) -> list[LayerGroup]:
    """The groups covering ``layers`` (Keras layer names); UsageError with did-you-mean for
    a name the model does not have, or one no quantized op stands for."""
    from edgekit.registry import did_you_mean

    names = [layer.name for layer in model.layers]
    chosen: list[LayerGroup] = []
    for name in layers:
        if name not in names:
            raise UsageError(f"{option}: the model has no layer {name!r}.{did_you_mean(name, names)} "
                             f"Layers: {', '.join(names)}. Received: {name}.")
        g = next((g for g in groups if name in g.layers), None)
        if g is None:
            mapped = [n for g in groups for n in g.layers]
            raise UsageError(f"{option}: layer {name!r} has no quantized op of its own (it is folded away or an "
                             f"input); pick one of: {', '.join(mapped)}. Received: {name}.")
        if g not in chosen:
            chosen.append(g)
    return chosen


def onnx_nodes(model: Any, proto: Any, layers: Sequence[str], option: str) -> list[str]:
    """The names of the ONNX nodes (tf2onnx names them ``model/<layer>/<op>``) that compute
    ``layers``, for onnxruntime's ``nodes_to_exclude``; UsageError as :func:`select_groups`."""
    order = {layer.name: i for i, layer in enumerate(model.layers)}
    chosen = select_groups(_onnx_groups(model, proto, order), layers, model, option)
    return [n.name for n in proto.graph.node
            if any(set(named_layers(t, order)) & set(g.layers) for g in chosen for t in [n.name, *n.output])]


def _onnx_groups(model: Any, proto: Any, order: dict[str, int]) -> list[LayerGroup]:
    """One group per layer that some ONNX node names (fusions are per node: no chains)."""
    named = {b for n in proto.graph.node for t in [n.name, *n.output] for b in named_layers(t, order)}
    return [LayerGroup("", name, (name,)) for name in sorted(named, key=order.__getitem__)]
