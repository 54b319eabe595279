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
              "keras_gzip_bytes", "tflite_int8_bytes", "tflite_int8_gzip_bytes", "params", "bits_per_param",
              "gzip_bits_per_param", "tflm_arena_bytes", "litert_us", "tflm_us", "seconds")


def accuracy(model, dataset: Dataset) -> float:
    """Holdout accuracy as a fraction in [0, 1]."""
    return accuracy_on(model, dataset.x_test, dataset.y_test)


def accuracy_on(model, x, y) -> float:
    """Top-1 accuracy of ``model`` on images ``x`` (an array or a split, read a batch at a time) with
    labels ``y``, as a fraction in [0, 1]."""
    from edgekit.runtimes.keras import keras_predict

    return float((np.asarray(keras_predict(model, x, 256)).argmax(1) == y).mean())


def empty_channels(kernel: np.ndarray) -> int:
    """Output channels (last kernel axis: filters, units) whose every weight is zero: a pruned-away filter."""
    k = np.asarray(kernel)
    return int((k.reshape(-1, k.shape[-1]) == 0).all(axis=0).sum())


def emptied_channels(model) -> dict[str, list[int]]:
    """``{layer: [empty output channels, channels]}`` for each kernel with a channel left without any weight."""
    out = {}
    for name, k in iter_kernels(model):
        n = empty_channels(k)
        if n:
            out[name] = [n, int(k.shape[-1])]
    return out


def per_layer(model, targets: dict[str, float] | None = None, clusters: dict[str, int] | None = None) -> list[dict]:
    """Per kernel: parameters, sparsity (fraction of exact zeros), unique values, output channels left without any
    weight, and the targets set."""
    rows = []
    for name, k in iter_kernels(model):
        rows.append({
            "layer": name,
            "params": int(k.size),
            "sparsity": float((k == 0).mean()),
            "unique_values": int(np.unique(k).size),
            "max_unique_per_channel": max(int(np.unique(k[..., c]).size) for c in range(k.shape[-1])),
            "empty_channels": empty_channels(k),
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
        **deploy_figures(tfl, dataset, int(float_model.count_params())),
        "seconds": float(seconds),
    }


def deploy_figures(flatbuffer: bytes, dataset: Dataset, params: int, litert_runs: int = 200,
                   tflm_runs: int = 20) -> dict[str, Any]:
    """What the flashed file costs on a device: bits per parameter (raw and gzip'd), the TFLite
    Micro arena (RAM), and batch-1 latency (median and fastest run, us) on LiteRT (1 thread,
    XNNPACK) and on TFLM.

    A runtime that cannot run the file gives ``None`` and its one-line reason under ``*_error``.
    """
    from edgekit.runtimes.litert import LiteRTRunner
    from edgekit.runtimes.tflite_micro import MicroRunner

    out: dict[str, Any] = {
        "params": params,
        "bits_per_param": len(flatbuffer) * 8 / params,
        "gzip_bits_per_param": gzip_size(flatbuffer) * 8 / params,
        "tflm_arena_bytes": None, "litert_us": None, "tflm_us": None,
    }
    x1 = dataset.x_test[:1]
    try:
        out.update(_us("litert", LiteRTRunner(flatbuffer, threads=1).latency(x1, runs=litert_runs)))
    except Exception as e:  # noqa: BLE001 (a figure we could not measure is reported, not fatal)
        out["litert_error"] = _one_line(e)
    try:
        micro = MicroRunner(flatbuffer)
        out["tflm_arena_bytes"] = int(micro.arena_size)
        out.update(_us("tflm", micro.latency(x1, runs=tflm_runs)))
    except Exception as e:  # noqa: BLE001
        out["tflm_error"] = _one_line(e)
    return out


def _us(runtime: str, lat: dict[str, Any]) -> dict[str, float]:
    """Median and fastest run in microseconds (on a shared, loaded CPU the fastest run is the
    least disturbed estimate; both are kept)."""
    return {f"{runtime}_us": lat["p50_ms"] * 1e3, f"{runtime}_best_us": float(min(lat["samples_us"]))}


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200] if text else ''}"


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


def ratios(inputs: dict[str, Any], final: dict[str, Any]) -> dict[str, float | None]:
    """Every ratio names what it divides: ``a_vs_b`` = size (or time) of b / that of a.

    Sizes: raw vs raw and gzip vs gzip, against the input's float32 .tflite and against the
    input's own int8 .tflite (the "reference int8"); speed and RAM against the reference int8.
    """
    def div(a: Any, b: Any) -> float | None:
        return None if not a or not b else float(b) / float(a)

    f, fin = inputs, final
    return {
        "tflite_int8_vs_input_float32": div(fin["tflite_int8_bytes"], f["tflite_float32_bytes"]),
        "tflite_int8_gzip_vs_input_float32_gzip": div(fin["tflite_int8_gzip_bytes"], f["tflite_float32_gzip_bytes"]),
        "tflite_int8_vs_input_int8": div(fin["tflite_int8_bytes"], f["tflite_int8_bytes"]),
        "tflite_int8_gzip_vs_input_int8_gzip": div(fin["tflite_int8_gzip_bytes"], f["tflite_int8_gzip_bytes"]),
        # kept for readers of edgekit-compression/1 (gzip'd int8 against the RAW float32 file)
        "tflite_int8_gzip_vs_input_float32": div(fin["tflite_int8_gzip_bytes"], f["tflite_float32_bytes"]),
        "litert_speedup_vs_input_int8": div(fin.get("litert_us"), f.get("litert_us")),
        "tflm_speedup_vs_input_int8": div(fin.get("tflm_us"), f.get("tflm_us")),
        "tflm_arena_vs_input_int8": div(fin.get("tflm_arena_bytes"), f.get("tflm_arena_bytes")),
    }
