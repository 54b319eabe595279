"""tflite-int8 with 16-bit activations (8-bit weights) for chosen Keras layers.

TF 2.21's converter quantizes a whole model to one activation width; ai-edge-quantizer
(``pip install 'edgekit[quantizer]'``) takes per-op recipes keyed by a regex on the op's
scope (its output tensor names joined by ``;`` plus a trailing ``;``). The float32
flatbuffer is quantized static int8 everywhere (``.*``), then a16w8 on the ops whose output
tensors name the chosen layers (found by :mod:`edgekit.export.layermap`); the quantizer puts
requantize ops at the int8/int16 boundaries and keeps int8 model input and output.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from edgekit.errors import UsageError
from edgekit.export.aeq import calibrate_and_quantize, make_quantizer, require_quantizer

NEEDS = "--int16 needs ai-edge-quantizer (per-layer 16-bit activations)"


def require_int16() -> Any:
    """The ``ai_edge_quantizer`` module, or a one-line UsageError saying how to install it for --int16."""
    return require_quantizer(NEEDS)


def int16_scopes(model: Any, graph: Any, layers: Sequence[str], option: str = "--int16") -> list[str]:
    """The names of the op output tensors of ``graph`` (a float flatbuffer of ``model``) that
    compute ``layers``: each chosen group's tensor and every activation naming one of its layers
    (a Dense with a softmax is two ops). UsageError with did-you-mean as ``--keep-float``."""
    from edgekit.export.layermap import groups_of_graph, named_layers, select_groups

    chosen = select_groups(groups_of_graph(model, graph), layers, model, option)
    order = {layer.name: i for i, layer in enumerate(model.layers)}
    produced = {i for op in graph.ops for i in op.outputs}
    names = [g.tensor for g in chosen]
    for t in graph.tensors:
        if t.index in produced and not t.is_constant and t.name not in names \
                and any(set(named_layers(t.name, order)) & set(g.layers) for g in chosen):
            names.append(t.name)
    return names


def _scope_regex(tensor: str) -> str:
    return "^" + re.escape(tensor) + ";$"


def int16_tflite(float_tflite: bytes, model: Any, representative: np.ndarray, layers: Sequence[str]) -> bytes:
    """Full int8 (int8 input/output) with the ops of ``layers`` (Keras layer names) at 16-bit
    activations and 8-bit weights, calibrated on ``representative`` images (finite: checked by
    :func:`edgekit.export.convert.to_tflite`, the way in)."""
    from edgekit.formats.tflite_flatbuffer import read_tflite

    aeq = require_int16()
    from ai_edge_quantizer import qtyping

    scopes = int16_scopes(model, read_tflite(float_tflite), layers)
    qt, float_tflite = make_quantizer(aeq, float_tflite)
    every = qtyping.TFLOperationName.ALL_SUPPORTED
    qt.add_static_config(".*", every, activation_num_bits=8, weight_num_bits=8)
    for name in scopes:
        qt.add_static_config(_scope_regex(name), every, activation_num_bits=16, weight_num_bits=8)
    data = calibrate_and_quantize(qt, float_tflite, representative)
    _check_int16(data, scopes, layers)
    return data


def _check_int16(data: bytes, scopes: Sequence[str], layers: Sequence[str]) -> None:
    """UsageError when an op of ``layers`` did not get 16-bit activations (the quantizer
    falls back to int8 for an op it has no a16w8 kernel for)."""
    from edgekit.formats.tflite_flatbuffer import read_tflite

    g = read_tflite(data)
    got = {g.tensor(op.outputs[0]).name: (op.op, g.tensor(op.outputs[0]).dtype) for op in g.ops
           if op.op != "QUANTIZE"}
    missing = [f"{name.split(';')[0]} ({got[name][0]})" for name in scopes if name in got and got[name][1] != "int16"]
    if missing:
        raise UsageError(f"--int16: ai-edge-quantizer has no 16-bit activation kernel for {', '.join(missing)}; "
                         f"leave that layer int8 or keep it float (--keep-float). Received: {', '.join(layers)}.")
