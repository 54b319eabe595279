"""ONNX targets: ``onnx`` (tf2onnx, float32) and ``onnx-int8`` (onnxruntime static QDQ quantization)."""
from __future__ import annotations

import contextlib
import functools
import io
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekit.artifacts import write_bytes
from edgekit.errors import EdgekitError, InputError, UsageError, first_line
from edgekit.export.base import ExportContext, ExportedFile, TargetOutput, target
from edgekit.vocab import FORMAT_ONNX, NCHW, ONNX, ONNX_INT8, ONNXRUNTIME

INPUT_NAME = "image"
FLOAT_FILE = "model_float32.onnx"
INT8_FILE = "model_int8.onnx"


def keras_to_onnx(model, input_shape: tuple[int, ...], opset: int = 17):
    """Convert a tf_keras model with tf2onnx; returns a checked, shape-inferred ModelProto."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    spec = (tf.TensorSpec((None, *input_shape), tf.float32, name=INPUT_NAME),)
    with contextlib.redirect_stdout(io.StringIO()):
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    proto.producer_name = "edgekit (tf2onnx)"
    onnx.checker.check_model(proto, full_check=True)
    return onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)


def graph_to_onnx(graph, opset: int = 17):
    """Convert a :class:`~edgekit.models.layout.TfGraph` (``handle.tf_graph()``) with tf2onnx;
    returns a checked, shape-inferred ModelProto with NHWC input ``image``.

    A frozen graph (a Keras 3 model) is converted from its frozen GraphDef: given the function
    itself, tf2onnx turns the tensors it captures (a Keras 3 ``Normalization`` layer's mean and
    variance, EfficientNet's) into graph inputs that no caller feeds."""
    import onnx
    import tf2onnx

    with contextlib.redirect_stdout(io.StringIO()):
        if graph.frozen:
            cf = graph.concrete()
            proto, _ = tf2onnx.convert.from_graph_def(
                cf.graph.as_graph_def(), input_names=[t.name for t in cf.inputs],
                output_names=[t.name for t in cf.outputs], opset=opset)
            _rename_io(proto, INPUT_NAME, "output_0")
        else:
            proto, _ = tf2onnx.convert.from_function(graph.function, input_signature=graph.function.input_signature,
                                                     opset=opset)
    proto.producer_name = "edgekit (tf2onnx)"
    onnx.checker.check_model(proto, full_check=True)
    return onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)


def _rename_io(proto, input_name: str, output_name: str) -> None:
    """Name the one graph input and output (a GraphDef conversion keeps TensorFlow's ``image:0``)."""
    renames = {proto.graph.input[0].name: input_name, proto.graph.output[0].name: output_name}
    for v in (proto.graph.input[0], proto.graph.output[0]):
        v.name = renames[v.name]
    for n in proto.graph.node:
        n.input[:] = [renames.get(i, i) for i in n.input]
        n.output[:] = [renames.get(o, o) for o in n.output]


def user_onnx(path: str):
    """The user's own ONNX file, re-checked (``onnx.checker``, full shape inference): what the
    ``onnx`` target copies for an ONNX source (its input layout and names are kept)."""
    import onnx

    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def describe_onnx(proto) -> dict[str, Any]:
    ops: dict[str, int] = {}
    for n in proto.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    init_types = sorted({_elem_type(t.data_type) for t in proto.graph.initializer})
    return {
        "opset": max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=None),
        "ir_version": proto.ir_version, "ops": ops, "initializer_dtypes": init_types,
        "inputs": [_value_info(v) for v in proto.graph.input],
        "outputs": [_value_info(v) for v in proto.graph.output],
    }


def _elem_type(code: int) -> str:
    import onnx

    return onnx.helper.tensor_dtype_to_np_dtype(code).name if code else "undefined"


def _value_info(v) -> dict[str, Any]:
    t = v.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
    return {"name": v.name, "dtype": _elem_type(t.elem_type), "shape": dims}


def float_onnx(ctx: ExportContext):
    def make():
        h = ctx.handle
        if h is not None and h.format == FORMAT_ONNX:
            ctx.progress("checking the ONNX model (copied as it is)")
            try:
                return user_onnx(h.path)
            except Exception as e:
                raise InputError(f"{h.path!r} fails the ONNX checker: {first_line(e)}") from None
        ctx.progress(f"converting to ONNX (opset {ctx.config.opset})")
        try:
            if ctx.model is not None:  # a tf_keras model: today's path
                return keras_to_onnx(ctx.model, ctx.input_shape, ctx.config.opset)
            return graph_to_onnx(h.tf_graph(), ctx.config.opset)
        except EdgekitError:
            raise
        except Exception as e:
            raise InputError(f"tf2onnx could not convert the model to ONNX opset {ctx.config.opset}: "
                             f"{first_line(e)}") from None

    return ctx.cached("onnx:float", make)


class _Reader:
    """onnxruntime CalibrationDataReader over calibration images (batch 1; a model with a fixed
    batch above 1 gets that many at a time, the last chunk filled up from the first images)."""

    def __init__(self, x: np.ndarray, input_name: str = INPUT_NAME, batch: int | None = None):
        self._x = x.astype(np.float32)
        self._i = 0
        self._name = input_name
        self._batch = batch or 1

    def get_next(self):
        if self._i >= len(self._x):
            return None
        chunk = self._x[self._i : self._i + self._batch]
        self._i += self._batch
        if len(chunk) < self._batch:  # wrap around: real images, not zeros, so the ranges stay true
            chunk = np.concatenate([chunk, np.resize(self._x, (self._batch - len(chunk), *self._x.shape[1:]))])
        return {self._name: chunk}

    def rewind(self) -> None:
        self._i = 0


QUANT_OPSET = 13  # per-channel QuantizeLinear/DequantizeLinear (their ``axis``) start at opset 13


def _opset(proto) -> int:
    return max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)


def quantizable_opset(proto):
    """``proto`` at opset :data:`QUANT_OPSET` or above: a lower one is converted
    (``onnx.version_converter``), or refused with one line when it does not convert."""
    import onnx
    from onnx import version_converter

    opset = _opset(proto)
    if opset >= QUANT_OPSET:
        return proto
    try:
        up = version_converter.convert_version(proto, QUANT_OPSET)
        onnx.checker.check_model(up)
    except Exception as e:
        raise InputError(f"onnx-int8 needs ONNX opset {QUANT_OPSET} or above (per-channel quantization) and the "
                         f"model's opset {opset} does not convert to it: {first_line(e, 160)}; re-export the model "
                         f"with opset_version={QUANT_OPSET} or above.") from None
    return up


def _fixed_batch(proto) -> int | None:
    """The fixed batch of the model's first graph input (None when dynamic): calibration feeds that many."""
    init = {t.name for t in proto.graph.initializer}
    inp = next((v for v in proto.graph.input if v.name not in init), None)
    dims = inp.type.tensor_type.shape.dim if inp is not None else []
    return int(dims[0].dim_value) if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 1 else None


def quantize_onnx(proto, calibration: np.ndarray, method: str = "minmax", input_name: str = INPUT_NAME,
                  exclude: Callable[[Any], list[str]] | None = None) -> bytes:
    """Static QDQ quantization: per-channel int8 weights, uint8 activations (x86 guidance).

    ``calibration`` is in the model's own input layout; ``input_name`` is its input
    (edgekit's own exports call it ``image``; a user's ONNX file names its own). The nodes
    ``exclude(pre-processed model)`` names stay float (``nodes_to_exclude``: the
    pre-processing renames fused nodes, so the names are taken after it)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    proto = quantizable_opset(proto)
    reader = type("Reader", (_Reader, CalibrationDataReader), {})(calibration, input_name, _fixed_batch(proto))
    with tempfile.TemporaryDirectory(prefix="edgekit-onnx-") as tmp:
        src, pre, dst = Path(tmp) / "float.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        onnx.save(proto, src)
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        except Exception:  # pre-processing is an optimisation only
            pre = src
        skip = exclude(onnx.load(pre)) if exclude else []
        quantize_static(
            str(pre), str(dst), reader, quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=methods[method], nodes_to_exclude=skip,
            extra_options={"CalibTensorRangeSymmetric": False, "ActivationSymmetric": False},
        )
        q = onnx.load(dst)
        onnx.checker.check_model(q)
        return q.SerializeToString()


def smoke_run(data: bytes, input_shape: tuple[int, ...]) -> list[int]:
    """Run the model once in onnxruntime on a zero batch of 2; returns the output shape."""
    from edgekit.runtimes.ort import OrtRunner

    out = OrtRunner(data).predict(np.zeros((2, *input_shape), np.float32))
    if out.ndim != 2 or out.shape[0] != 2 or not np.isfinite(out).all():
        raise InputError(f"onnxruntime ran the exported model but its output is malformed: shape {list(out.shape)}.")
    return list(out.shape)


@target(ONNX, description="ONNX float32 via tf2onnx (dynamic batch), checked and shape-inferred",
        needs="nothing (--opset to choose the opset)", runtime=ONNXRUNTIME, exact=True, files=(FLOAT_FILE,))
def build_onnx(ctx: ExportContext, stage: Path, spec) -> TargetOutput:
    proto = float_onnx(ctx)
    data = proto.SerializeToString()
    info = describe_onnx(proto)
    info["onnxruntime_output_shape"] = smoke_run(data, ctx.input_shape)
    write_bytes(stage / FLOAT_FILE, data)
    return TargetOutput(ONNX, [ExportedFile(FLOAT_FILE, "onnx")], FLOAT_FILE, spec.runtime, info)


@target(ONNX_INT8, description="ONNX static int8 (QDQ, per-channel weights) by onnxruntime quantization",
        needs="calibration images (--representative-samples; --calibration minmax|entropy|percentile)",
        runtime=ONNXRUNTIME, exact=False, files=(INT8_FILE,), quantized=True)
def build_onnx_int8(ctx: ExportContext, stage: Path, spec) -> TargetOutput:
    import onnx

    calib = ctx.calibration(ONNX_INT8)
    ctx.progress(f"quantizing ONNX to int8 ({ctx.config.calibration} calibration, {len(calib)} images)")
    h = ctx.handle
    if h is not None and h.format == FORMAT_ONNX:  # the user's file, calibrated in its own layout
        if ctx.config.keep_float:
            raise UsageError("keep_float needs a Keras model (its layer names); an ONNX source has none.")
        x = calib.transpose(0, 3, 1, 2) if h.layout == NCHW else calib
        data = quantize_onnx(onnx.load(h.path), x, ctx.config.calibration, input_name=h.inputs[0].name)
    else:
        exclude = None
        if ctx.config.keep_float:
            from edgekit.export.layermap import onnx_nodes

            exclude = functools.partial(onnx_nodes, ctx.model, layers=ctx.config.keep_float, option="keep_float")
        proto = float_onnx(ctx)
        data = quantize_onnx(proto, calib, ctx.config.calibration, input_name=proto.graph.input[0].name,
                             exclude=exclude)
    info = describe_onnx(onnx.load_from_string(data))
    info["onnxruntime_output_shape"] = smoke_run(data, ctx.input_shape)
    write_bytes(stage / INT8_FILE, data)
    info["calibration"] = {"method": ctx.config.calibration, "images": int(len(calib))}
    return TargetOutput(ONNX_INT8, [ExportedFile(INT8_FILE, "onnx")], INT8_FILE, spec.runtime, info)
