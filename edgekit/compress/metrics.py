"""What a compression stage achieved: accuracy, sparsity and shared values per kernel,
non-zero parameters, and the sizes of the files a user ships (raw and gzip'd)."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.artifacts import gzip_size
from edgekit.compress.layers import iter_kernels
from edgekit.data import Dataset

STAGE_KEYS = ("accuracy", "accuracy_drop_pt", "tflite_int8_accuracy", "sparsity", "nonzero_params",
              "max_unique_values", "keras_bytes",
              "keras_gzip_bytes", "tflite_int8_bytes", "tflite_int8_gzip_bytes", "seconds")


def accuracy(model, dataset: Dataset) -> float:
    """Holdout accuracy as a fraction in [0, 1]."""
    probs = model.predict(dataset.x_test, batch_size=256, verbose=0)
    return float((probs.argmax(1) == dataset.y_test).mean())


def per_layer(model, targets: dict[str, float] | None = None, clusters: dict[str, int] | None = None) -> list[dict]:
    """Per kernel: parameters, sparsity (fraction of exact zeros), unique values, and the targets set."""
    rows = []
    for name, k in iter_kernels(model):
        rows.append({
            "layer": name,
            "params": int(k.size),
            "sparsity": float((k == 0).mean()),
            "unique_values": int(np.unique(k).size),
            "max_unique_per_channel": max(int(np.unique(k[..., c]).size) for c in range(k.shape[-1])),
            "target_sparsity": (targets or {}).get(name),
            "clusters": (clusters or {}).get(name),
        })
    return rows


def overall_sparsity(model) -> float:
    """Zeros over all conv/dense kernel weights (the weights pruning acts on)."""
    ks = [k for _, k in iter_kernels(model)]
    total = sum(k.size for k in ks)
    return float(sum(int((k == 0).sum()) for k in ks) / total) if total else 0.0


def nonzero_params(model) -> int:
    """Non-zero values over all float weights (kernels and biases)."""
    return int(sum(int(np.count_nonzero(w)) for w in model.get_weights()
                   if np.issubdtype(np.asarray(w).dtype, np.floating)))


def keras_sizes(model) -> tuple[int, int]:
    """Bytes of ``model`` saved as ``.keras`` (raw, gzip'd)."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.keras"
        model.save(p)
        data = p.read_bytes()
    return len(data), gzip_size(data)


def tflite_bytes(model, dataset: Dataset, mode: str = "int8", n: int = 300) -> bytes:
    """The ``.tflite`` ``model`` converts to (full-int8: calibrated on ``n`` training images)."""
    from edgekit.export.convert import to_tflite

    rep = dataset.representative(min(n, len(dataset.x_train))) if mode == "int8" else None
    return to_tflite(model, mode, rep)


def tflite_accuracy(flatbuffer: bytes, dataset: Dataset) -> float:
    """Holdout accuracy of a .tflite run on LiteRT (int8 inputs quantized with the input
    tensor's own scale and zero point)."""
    from edgekit.runtimes.litert import LiteRTRunner

    probs = LiteRTRunner(flatbuffer).predict(dataset.x_test)
    return float((probs.argmax(1) == dataset.y_test).mean())


def stage_metrics(stage: str, deploy_model, float_model, dataset: Dataset, base_accuracy: float | None,
                  seconds: float, n_rep: int = 300) -> dict[str, Any]:
    """One row of the stage table.

    ``deploy_model`` is what the stage hands on (the QAT model after QAT) and gives the
    accuracy and the int8 .tflite; ``float_model`` is the same weights without any
    wrapper, which gives sparsity, unique values and the ``.keras`` size.
    """
    acc = accuracy(deploy_model, dataset)
    kb, kgz = keras_sizes(float_model)
    tfl = tflite_bytes(deploy_model, dataset, "int8", n_rep)
    rows = per_layer(float_model)
    return {
        "stage": stage,
        "accuracy": acc,
        "accuracy_drop_pt": 0.0 if base_accuracy is None else (base_accuracy - acc) * 100.0,
        "sparsity": overall_sparsity(float_model),
        "nonzero_params": nonzero_params(float_model),
        "max_unique_values": max(r["unique_values"] for r in rows),
        "keras_bytes": kb,
        "keras_gzip_bytes": kgz,
        "tflite_int8_accuracy": tflite_accuracy(tfl, dataset),
        "tflite_int8_bytes": len(tfl),
        "tflite_int8_gzip_bytes": gzip_size(tfl),
        "seconds": float(seconds),
    }


KERNEL_OPS = {"CONV_2D": 0, "FULLY_CONNECTED": 0, "DEPTHWISE_CONV_2D": 3}  # op -> output-channel axis


def int8_kernels(flatbuffer: bytes) -> list[dict[str, Any]]:
    """Per int8 conv/dense kernel of a .tflite (after the converter folded BatchNorm into it):
    name, op, parameters, sparsity and the most distinct values in one output channel."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=flatbuffer)
    interp.allocate_tensors()
    details = {d["index"]: d for d in interp.get_tensor_details()}
    rows = []
    for op in interp._get_ops_details():  # the public API lists tensors, not which op uses them
        axis = KERNEL_OPS.get(op["op_name"])
        if axis is None or len(op["inputs"]) < 2:
            continue
        d = details.get(int(op["inputs"][1]))
        if d is None or d["dtype"] != np.int8:
            continue
        k = np.moveaxis(interp.get_tensor(d["index"]), axis, 0)
        rows.append({"tensor": d["name"], "op": op["op_name"], "params": int(k.size),
                     "sparsity": float((k == 0).mean()),
                     "max_unique_per_channel": max(int(np.unique(c).size) for c in k)})
    return rows
