"""``edgekit inspect MODEL``: what a model is and what each export target can do with it.

:func:`inspect_model` returns a plain dict: format, framework, layout, input/output tensors,
parameters, multiply-accumulates per image, the ops the model is made of (Keras layer classes,
ONNX op types or TensorFlow ops) and, per target, ``{"ok": bool, "detail": str}``. The TFLite,
Edge TPU and micro checks really convert the model (from its TensorFlow graph); the int8
conversion is calibrated on a few *random* [0, 1) images unless a dataset is given, which is
enough to see which ops map, not to judge accuracy.
"""
from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekit import vocab
from edgekit.errors import UsageError
from edgekit.models.handle import ModelHandle, TensorSpec
from edgekit.models.layout import cached

CALIBRATION_IMAGES = 8
# TF ops that are plumbing, not compute: left out of a SavedModel's op list
TF_PLUMBING = frozenset({"Placeholder", "Const", "Identity", "NoOp", "ReadVariableOp", "VarHandleOp",
                         "StatefulPartitionedCall", "PartitionedCall"})


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _tensor(t: TensorSpec) -> dict[str, Any]:
    return {"name": t.name, "shape": [d if d is None else int(d) for d in t.shape], "dtype": t.dtype}


# --- the TensorFlow graph of any format (switch to the unified handle method once it exists) ---

def _tf_function(handle: ModelHandle) -> Any:
    """A ``tf.function`` with one fixed NHWC float32 input signature (batch free), whatever the format."""
    from edgekit._lazy import tf

    t = tf()
    if "tf_graph" in handle.info:  # SavedModel, ONNX
        return handle.info["tf_graph"]().function
    if "tf_function" in handle.info:  # Keras 3
        return handle.info["tf_function"]
    model = handle.keras_model("convert to TensorFlow")
    spec = t.TensorSpec((None, *model.input_shape[1:]), t.float32, name="image")
    return t.function(lambda x: model(x, training=False), input_signature=[spec])


def frozen_graph(handle: ModelHandle, batch_size: int | None = 1) -> Any:
    """The model's concrete function with a fixed batch and its variables frozen to constants."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from edgekit._lazy import tf

    t = tf()
    fn = _tf_function(handle)
    spec = fn.input_signature[0]
    fixed = t.TensorSpec((batch_size, *spec.shape[1:]), spec.dtype, name="image")
    return convert_variables_to_constants_v2(t.function(fn.python_function).get_concrete_function(fixed))


def to_tflite(frozen: Any, representative: np.ndarray | None = None) -> bytes:
    """Float TFLite of a frozen concrete function, or full int8 calibrated on ``representative``."""
    from edgekit._lazy import tf
    from edgekit.runtimes.base import quiet_native_output

    t = tf()
    conv = t.lite.TFLiteConverter.from_concrete_functions([frozen])
    if representative is not None:
        conv.optimizations = [t.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([representative[i : i + 1]] for i in range(len(representative)))
        conv.target_spec.supported_ops = [t.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = t.int8
    with warnings.catch_warnings(), quiet_native_output():
        warnings.simplefilter("ignore")
        return bytes(conv.convert())


# --- parameters, MACs and ops per format ---

def keras_facts(model: Any) -> dict[str, Any]:
    """Parameters, MACs (per image) and layer classes of a Keras model (tf_keras or Keras 3)."""
    from edgekit.models.summary import model_summary

    s = model_summary(model)
    return {"params": s["params"], "macs": s["macs"], "ops": dict(Counter(l["type"] for l in s["layers"]))}


def _onnx_macs(node: Any, shapes: dict[str, tuple[Any, ...]]) -> int | None:
    """MACs per image of one Conv / Gemm / MatMul node from inferred shapes (0 for other ops)."""
    if node.op_type not in ("Conv", "Gemm", "MatMul"):
        return 0
    out, a, b = shapes.get(node.output[0]), shapes.get(node.input[0]), shapes.get(node.input[1])
    dims = [out, a, b]
    if any(d is None or not all(isinstance(v, int) for v in d[1 if i < 2 else 0:]) for i, d in enumerate(dims)):
        return None  # symbolic (or unknown) size: no count
    per_image = int(np.prod(out[1:])) if len(out) > 1 else 1
    if node.op_type == "Conv":  # weights (O, I/groups, kh, kw): each output does I/groups*kh*kw MACs
        return per_image * int(np.prod(b[1:]))
    if node.op_type == "Gemm":
        trans_a = next((x.i for x in node.attribute if x.name == "transA"), 0)
        return per_image * int(a[0] if trans_a else a[-1])
    return per_image * int(a[-1])


def onnx_facts(proto: Any) -> dict[str, Any]:
    """Parameters (initializer elements), MACs per image (Conv/Gemm/MatMul, from onnx shape
    inference; "unknown" when a size is symbolic) and op types of an ONNX model."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # a graph shape inference rejects: count what the original declares
        inferred = proto
    g = inferred.graph
    shapes: dict[str, tuple[Any, ...]] = {}
    for v in list(g.input) + list(g.value_info) + list(g.output):
        dims = v.type.tensor_type.shape.dim
        shapes[v.name] = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param or None for d in dims)
    for t in g.initializer:
        shapes[t.name] = tuple(int(d) for d in t.dims)
    try:
        macs = [_onnx_macs(n, shapes) for n in g.node]
    except (IndexError, TypeError, ValueError):  # a node without its operands: the checker's business
        macs = [None]
    return {"params": int(sum(int(np.prod(t.dims)) for t in g.initializer)),
            "macs": "unknown" if None in macs else int(sum(macs)),
            "ops": dict(Counter(n.op_type for n in g.node))}


def tflite_macs(data: bytes) -> int:
    """MACs per image of a batch-1 TFLite graph: convolutions, fully connected and batch matmul."""
    from edgekit.formats.tflite_flatbuffer import read_tflite
    from edgekit.models.inspect_tflite import graph_macs

    return graph_macs(read_tflite(data))


def savedmodel_facts(handle: ModelHandle, frozen: Callable[[], Any], tflite: Callable[[], bytes]) -> dict[str, Any]:
    """Parameters (the variables the SavedModel stores), MACs (from the float TFLite conversion, else
    "unknown") and the TF ops of the chosen signature."""
    import tensorflow as tf

    try:
        stored = tf.train.list_variables(str(Path(str(handle.path)) / "variables" / "variables"))
    except Exception:  # no variables file (a graph of constants only)
        stored = []
    params = int(sum(int(np.prod(shape)) for name, shape in stored if name.endswith("VARIABLE_VALUE")))
    ops: Counter[str] = Counter()
    macs: int | str = "unknown"
    try:
        graph_def = frozen().graph.as_graph_def()
        nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
        ops.update(n.op for n in nodes if n.op not in TF_PLUMBING)
        macs = tflite_macs(tflite())
    except Exception:  # an op TFLite cannot convert: the targets say which
        pass
    return {"params": params, "macs": macs, "ops": dict(ops)}


# --- what each target can do ---

def _ok(detail: str) -> dict[str, Any]:
    return {"ok": True, "detail": detail}


def _no(detail: str) -> dict[str, Any]:
    return {"ok": False, "detail": detail}


def _attempt(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn()
    except Exception as e:
        return _no(_first_line(e))


def compress_status(handle: ModelHandle) -> dict[str, Any]:
    """Whether ``edgekit compress`` (tfmot, tf_keras only) can work on the model, and why not."""
    if handle.format == vocab.FORMAT_TF_KERAS:
        return _ok("tf_keras model")
    if handle.format == vocab.FORMAT_KERAS3:
        tr = handle.info.get("translation", {})
        if tr.get("ok"):
            return _ok(f"tf_keras translation proven, max diff {tr['max_abs_diff']:.3g} on {tr['proved_on']}")
        return _no(f"the Keras 3 model has no proven tf_keras translation: {tr.get('reason', 'not attempted')}")
    return _no(f"compression (pruning, clustering, QAT) needs a Keras model; this {handle.format} model "
               "has no Keras layers to wrap")


def onnx_status(handle: ModelHandle) -> dict[str, Any]:
    """ONNX export: the file itself for an ONNX model, else the conversion the onnx target runs
    (tf2onnx), then run once by onnxruntime against the model on random images: "ok" only when
    the ONNX file really computes the model."""
    if handle.format == vocab.FORMAT_ONNX:
        return _ok("the model is ONNX already (onnx-int8: onnxruntime static quantization)")

    def convert() -> dict[str, Any]:
        import onnxruntime as ort

        from edgekit.export.onnx import graph_to_onnx, keras_to_onnx
        from edgekit.models.keras3_format import proof_images

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            shape = tuple(int(d) for d in handle.input_shape)
            proto = keras_to_onnx(handle.model, shape) if handle.is_keras else graph_to_onnx(handle.tf_graph())
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        x = proof_images(handle.input_shape, 4)
        diff = float(np.max(np.abs(sess.run(None, {sess.get_inputs()[0].name: x})[0] - handle.predict(x))))
        return _ok(f"tf2onnx converts it ({len(proto.graph.node)} ONNX nodes); onnxruntime agrees, max |diff| "
                   f"{diff:.2g} on 4 random images")

    return _attempt(convert)


def target_status(handle: ModelHandle, calibration: np.ndarray, calibration_kind: str,
                  frozen: Callable[[], Any], tflite: Callable[[], bytes]) -> dict[str, dict[str, Any]]:
    """tflite, tflite-int8, tflite-int4, edgetpu, micro, compress and onnx: ``{"ok", "detail"}`` each."""
    out: dict[str, dict[str, Any]] = {}
    out[vocab.TFLITE] = _attempt(lambda: _ok(f"float32 TFLite converts ({len(tflite()):,} bytes)"))
    int8: list[bytes] = []

    def quantize() -> dict[str, Any]:
        int8.append(to_tflite(frozen(), calibration))
        return _ok(f"full-int8 TFLite converts ({len(int8[0]):,} bytes; calibrated on {calibration_kind})")

    out[vocab.TFLITE_INT8] = _attempt(quantize)
    out[vocab.TFLITE_INT4] = _attempt(lambda: _int4(tflite(), calibration))
    if int8:
        out[vocab.EDGETPU] = _attempt(lambda: _edgetpu(int8[0]))
        out[vocab.MICRO] = _attempt(lambda: _micro(int8[0]))
    else:
        for name in (vocab.EDGETPU, vocab.MICRO):
            out[name] = _no(f"needs the full-int8 TFLite conversion, which failed: {out[vocab.TFLITE_INT8]['detail']}")
    out["compress"] = compress_status(handle)
    out[vocab.ONNX] = onnx_status(handle)
    return out


def _edgetpu(data: bytes) -> dict[str, Any]:
    from edgekit.export.edgetpu import analyze_edgetpu

    a = analyze_edgetpu(data)
    return {"ok": a.fully_mapped and not a.model_issues, "detail": f"{a.mapped_ops}/{len(a.ops)} ops map: {a.summary()}",
            "ops_mapped": a.mapped_ops, "ops_total": len(a.ops)}


def _int4(float_tflite: bytes, calibration: np.ndarray) -> dict[str, Any]:
    from edgekit.export.int4 import int4_tflite, int4_weights

    data = int4_tflite(float_tflite, calibration)
    return _ok(f"int4 weights in {len(int4_weights(data))} kernels ({len(data):,} bytes; LiteRT only)")


def _micro(data: bytes) -> dict[str, Any]:
    from edgekit.runtimes.tflite_micro import find_arena_size

    arena = find_arena_size(data)
    return {"ok": True, "detail": f"arena ≈ {arena:,} B (int8, TFLite Micro reference kernels)", "arena_bytes": arena}


def calibration_images(handle: ModelHandle, dataset: Any | None, n: int = CALIBRATION_IMAGES) -> tuple[np.ndarray, str]:
    """(images, what they are): ``n`` dataset images, else random [0, 1) ones of the model's shape."""
    from edgekit.models.keras3_format import proof_images

    if dataset is not None:
        from edgekit.models.handle import check_fits

        check_fits(handle, dataset)
        return dataset.representative(n).astype(np.float32), f"{n} {dataset.info.spec} images"
    return proof_images(handle.input_shape, n), f"{n} random [0, 1) images, not real data"


def inspect_model(path: Any, signature: str | None = None, dataset: Any | None = None,
                  targets: bool = True) -> dict[str, Any]:
    """What ``path`` is and what each target can do with it (see the module docstring)."""
    from edgekit.models.loading import load

    handle = load(path, **({"signature": signature} if signature else {}))
    if signature and handle.format != vocab.FORMAT_SAVEDMODEL:
        raise UsageError(f"--signature picks a SavedModel signature, but {str(path)!r} is a {handle.format} model. "
                         f"Received: --signature {signature}.")
    frozen = cached(lambda: frozen_graph(handle))
    tflite = cached(lambda: to_tflite(frozen()))
    if handle.format == vocab.FORMAT_ONNX:
        facts = onnx_facts(handle.model)
    elif handle.format == vocab.FORMAT_SAVEDMODEL:
        facts = savedmodel_facts(handle, frozen, tflite)
    else:
        facts = keras_facts(handle.info.get("keras3_model", handle.model))
    report: dict[str, Any] = {
        "path": handle.path, "format": handle.format, "framework": handle.framework, "layout": handle.layout,
        "inputs": [_tensor(t) for t in handle.inputs], "outputs": [_tensor(t) for t in handle.outputs],
        **facts,
    }
    for key in ("signature", "layout_note", "opset", "translation"):
        if key in handle.info:
            report[key] = handle.info[key]
    if targets:
        x, kind = calibration_images(handle, dataset)
        report["calibration"] = kind
        report["targets"] = target_status(handle, x, kind, frozen, tflite)
    if "conversion" in handle.info:  # an ONNX model's onnx2tf conversion, proven against onnxruntime
        report["conversion"] = handle.info["conversion"]
    return report


def describe(report: dict[str, Any]) -> list[str]:
    """The report as lines of text (what ``edgekit inspect`` prints without ``--json``)."""
    def tensors(ts: list[dict[str, Any]]) -> str:
        return ", ".join(f"{t['name']} {t['dtype']} ({', '.join(str(d if d is not None else '?') for d in ['N', *t['shape']])})" for t in ts)

    def num(v: Any) -> str:
        return f"{v:,}" if isinstance(v, int) else str(v)


    ops = ", ".join(f"{k} x{v}" for k, v in sorted(report["ops"].items(), key=lambda kv: (-kv[1], kv[0])))
    lines = [f"{report['path']}: {report['format']} ({report['framework']}), layout {report['layout']}",
             f"  inputs:  {tensors(report['inputs'])}", f"  outputs: {tensors(report['outputs'])}",
             f"  params:  {num(report['params'])}   MACs/image: {num(report['macs'])}", f"  ops:     {ops}"]
    if "layout_note" in report:
        lines.append(f"  note:    {report['layout_note']}")
    for name, status in report.get("targets", {}).items():
        lines.append(f"  {name + ':':<12} {'ok' if status['ok'] else 'no'} - {status['detail']}")
    return lines
