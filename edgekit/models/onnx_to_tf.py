"""ONNX -> TensorFlow in NHWC, for the op set of small CNNs that PyTorch exports.

Why not onnx2tf: its releases that declare their requirements pin another stack (1.29.x:
tensorflow==2.19.0, onnx==1.19.1, onnxruntime==1.23.0, numpy==1.26.4; 2.x: Python >= 3.12);
the one pip settles on beside tensorflow==2.21.0 (1.28.8) declares no requirements at all, so
pip cannot check it. This module is a small, checked converter instead.

The graph is traced into a ``tf.function`` whose input is the dataset's float32 NHWC images.
Rank-4 tensors that ONNX holds as (N, C, H, W) are held *channels-last* here ("cl"): Conv,
pooling, BatchNormalization, elementwise ops, Concat, Pad and Softmax work on them in NHWC
with their axes, pads and constants remapped, and a tensor goes back to ONNX order only where
ONNX semantics depend on memory order (Flatten/Reshape of a spatial map larger than 1x1, MatMul,
graph outputs). Conv weights (O, I, kh, kw) become (kh, kw, I, O); weights are constants, so the
function converts with ``TFLiteConverter.from_concrete_functions``. An op outside
:data:`CONVERTERS` is an InputError naming it.
"""
from __future__ import annotations

import dataclasses
import operator
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekit import vocab
from edgekit.errors import InputError
from edgekit.models.layout import TfGraph, guess_layout

CL_AXIS = (0, 3, 1, 2)  # ONNX axis a of a channels-last tensor is TF axis CL_AXIS[a]
TO_CL, TO_ONNX = (0, 2, 3, 1), (0, 3, 1, 2)


class ConversionError(InputError):
    """An ONNX graph this converter cannot translate (exit 2)."""


@dataclasses.dataclass
class _T:
    """A value during conversion: a tf tensor or a numpy constant; ``cl`` when it is an ONNX
    (N, C, H, W) tensor held as (N, H, W, C)."""

    v: Any
    cl: bool = False


def _label(node: Any) -> str:
    """A node's name, or its first output where the exporter left names empty."""
    return node.name or (node.output[0] if node.output else "?")


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    out = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in out.items()}


def _const(t: _T | None, node: Any, what: str) -> np.ndarray:
    if t is None or not isinstance(t.v, np.ndarray):
        raise ConversionError(f"ONNX {node.op_type} node {_label(node)!r} has a computed {what}; edgekit converts it only "
                              "when it is a constant (export with static shapes, e.g. torch.flatten).")
    return t.v


def _tf(t: _T) -> Any:
    import tensorflow as tf

    return tf.constant(t.v) if isinstance(t.v, np.ndarray) else t.v


def to_onnx_order(t: _T) -> Any:
    """The value in ONNX's own axis order."""
    import tensorflow as tf

    return tf.transpose(t.v, TO_ONNX) if t.cl else _tf(t)


def _cl_const(a: np.ndarray) -> np.ndarray:
    """A constant that broadcasts against (N, C, H, W), reshaped to broadcast against (N, H, W, C)."""
    if a.ndim == 4:
        return a.transpose(TO_CL)
    if a.ndim == 3:
        return a.transpose(1, 2, 0)
    if a.ndim == 2:
        return a[:, :, None]
    return a[:, None] if a.ndim == 1 and a.size > 1 else a


def _to_cl(t: _T) -> Any:
    import tensorflow as tf

    if t.cl:
        return t.v
    if isinstance(t.v, np.ndarray):
        return tf.constant(_cl_const(t.v))
    if t.v.shape.rank == 4:
        return tf.transpose(t.v, TO_CL)
    raise ConversionError(f"cannot broadcast a rank-{t.v.shape.rank} tensor against a channels-first feature map.")


def _flat_ok(t: _T) -> bool:
    """True when a channels-last map has 1x1 spatial size, so NCHW and NHWC memory orders agree."""
    return t.cl and tuple(t.v.shape[1:3]) == (1, 1)


def _padding(node: Any, a: dict[str, Any], k: list[int]) -> str | list[list[int]]:
    """TF padding for a 2-D window op: "SAME"/"VALID" where they match ONNX, else explicit NHWC pads."""
    auto = a.get("auto_pad", "NOTSET")
    s, d = a.get("strides", [1, 1]), a.get("dilations", [1, 1])
    if auto == "VALID":
        return "VALID"
    if auto == "SAME_UPPER":
        return "SAME"
    if auto != "NOTSET":
        raise ConversionError(f"ONNX {node.op_type} node {_label(node)!r} uses auto_pad={auto}; edgekit converts "
                              "NOTSET, VALID and SAME_UPPER.")
    p = a.get("pads", [0, 0, 0, 0])
    if not any(p):
        return "VALID"
    if s == [1, 1] and p[:2] == p[2:] and all(pi * 2 == di * (ki - 1) for pi, di, ki in zip(p, d, k)):
        return "SAME"
    return [[0, 0], [p[0], p[2]], [p[1], p[3]], [0, 0]]


def _check_2d(node: Any, a: dict[str, Any]) -> list[int]:
    k = list(a.get("kernel_shape", []))
    if len(k) != 2 or a.get("ceil_mode", 0):
        raise ConversionError(f"ONNX {node.op_type} node {_label(node)!r} is not a 2-D window op with ceil_mode=0; "
                              "edgekit converts 2-D image models only.")
    return k


def conv(node, ins, a, ctx):
    import tensorflow as tf

    x, w = _to_cl(ins[0]), _const(ins[1], node, "weight")
    if w.ndim != 4:
        raise ConversionError(f"ONNX Conv node {_label(node)!r} is {w.ndim - 2}-D; edgekit converts 2-D convolutions.")
    k = list(a.get("kernel_shape", w.shape[2:]))
    pad = _padding(node, a, k)
    if isinstance(pad, list):
        x, pad = tf.pad(x, pad), "VALID"
    g, s, d = a.get("group", 1), a.get("strides", [1, 1]), a.get("dilations", [1, 1])
    c_in = w.shape[1] * g
    if g == 1:
        y = tf.nn.conv2d(x, w.transpose(2, 3, 1, 0), [1, *s, 1], pad, dilations=[1, *d, 1])
    elif w.shape[1] == 1 and w.shape[0] % c_in == 0:  # depthwise: (C*m, 1, kh, kw) -> (kh, kw, C, m)
        dw = w.transpose(2, 3, 0, 1).reshape(k[0], k[1], c_in, w.shape[0] // c_in)
        y = tf.nn.depthwise_conv2d(x, dw, [1, *s, 1], pad, dilations=d)
    else:
        raise ConversionError(f"ONNX Conv node {_label(node)!r} has group={g} (neither 1 nor depthwise).")
    if len(ins) > 2 and ins[2] is not None:
        y = tf.nn.bias_add(y, _const(ins[2], node, "bias"))
    return _T(y, cl=True)


def pool(node, ins, a, ctx):
    import tensorflow as tf

    x, k = _to_cl(ins[0]), _check_2d(node, a)
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise ConversionError(f"ONNX {node.op_type} node {_label(node)!r} is dilated; edgekit converts dilation 1.")
    pad, s = _padding(node, a, k), [1, *a.get("strides", [1, 1]), 1]
    if node.op_type == "MaxPool":
        if isinstance(pad, list):  # padding with the map's minimum keeps every window's max exact
            x, pad = tf.pad(x, pad, constant_values=tf.reduce_min(x)), "VALID"
        return _T(tf.nn.max_pool2d(x, [1, *k, 1], s, pad), cl=True)
    if isinstance(pad, list):
        if not a.get("count_include_pad", 0):
            raise ConversionError(f"ONNX AveragePool node {_label(node)!r} pads asymmetrically without counting the "
                                  "pads; edgekit cannot convert it exactly.")
        x, pad = tf.pad(x, pad), "VALID"
    elif pad == "SAME" and a.get("count_include_pad", 0):
        x, pad = tf.pad(x, [[0, 0], [k[0] // 2] * 2, [k[1] // 2] * 2, [0, 0]]), "VALID"
    return _T(tf.nn.avg_pool2d(x, [1, *k, 1], s, pad), cl=True)


def global_pool(node, ins, a, ctx):
    import tensorflow as tf

    reduce = tf.reduce_mean if node.op_type == "GlobalAveragePool" else tf.reduce_max
    return _T(reduce(_to_cl(ins[0]), axis=[1, 2], keepdims=True), cl=True)


def batch_norm(node, ins, a, ctx):
    s, b, m, v = (_const(t, node, "parameter") for t in ins[1:5])
    mul = (s / np.sqrt(v + a.get("epsilon", 1e-5))).astype(np.float32)
    add = (b - m * mul).astype(np.float32)
    x = ins[0]
    if not x.cl and x.v.shape.rank == 4:
        mul, add = mul[:, None, None], add[:, None, None]
    return _T(x.v * mul + add, cl=x.cl)


def unary(fn: Callable[[Any, dict[str, Any]], Any]):
    def convert(node, ins, a, ctx):
        return _T(fn(_tf(ins[0]), a), cl=ins[0].cl)

    return convert


def clip(node, ins, a, ctx):
    import tensorflow as tf

    lo = float(_const(ins[1], node, "min")) if len(ins) > 1 and ins[1] is not None else a.get("min")
    hi = float(_const(ins[2], node, "max")) if len(ins) > 2 and ins[2] is not None else a.get("max")
    x = _tf(ins[0])
    if (lo, hi) == (0.0, 6.0):
        return _T(tf.nn.relu6(x), cl=ins[0].cl)
    x = x if lo is None else tf.maximum(x, lo)
    return _T(x if hi is None else tf.minimum(x, hi), cl=ins[0].cl)


BINARY = {"Add": operator.add, "Sub": operator.sub, "Mul": operator.mul, "Div": operator.truediv}


def binary(node, ins, a, ctx):
    x, y = ins[0], ins[1]
    op = BINARY[node.op_type]
    if x.cl or y.cl:
        return _T(op(_to_cl(x), _to_cl(y)), cl=True)
    if isinstance(x.v, np.ndarray) and isinstance(y.v, np.ndarray):
        return _T(op(x.v, y.v))
    return _T(op(_tf(x), y.v))


def flatten(node, ins, a, ctx):
    import tensorflow as tf

    x, axis = ins[0], a.get("axis", 1)
    v = x.v if _flat_ok(x) else to_onnx_order(x)
    rest = v.shape[axis:]
    if axis != 1 or not rest.is_fully_defined():
        raise ConversionError(f"ONNX Flatten node {_label(node)!r} has axis={axis} or unknown sizes; edgekit converts "
                              "axis=1 of static feature maps.")
    return _T(tf.reshape(v, [-1, int(np.prod(rest))]))


def reshape(node, ins, a, ctx):
    import tensorflow as tf

    x, shape = ins[0], [int(d) for d in _const(ins[1], node, "shape")]
    v = x.v if _flat_ok(x) and len(shape) == 2 else to_onnx_order(x)
    if not a.get("allowzero", 0):
        shape = [v.shape[i] if d == 0 and v.shape[i] is not None else d for i, d in enumerate(shape)]
        unknown = [i for i, d in enumerate(shape) if d == 0]  # "copy this axis" of a dynamic axis
        if len(unknown) == 1 and -1 not in shape:
            shape[unknown[0]] = -1
        elif unknown:
            shape = tf.stack([tf.shape(v)[i] if i in unknown else d for i, d in enumerate(shape)])
    if ctx["static_batch"] and isinstance(shape, list) and shape[0] == ctx["static_batch"] \
            and v.shape[1:].is_fully_defined():
        # torch.onnx.export without dynamic axes bakes the export batch in: keep the batch axis free
        per_image = int(np.prod(v.shape[1:]))
        known = int(np.prod([d for d in shape[1:] if d != -1]))
        shape = [-1] + [per_image // known if d == -1 else d for d in shape[1:]]
    return _T(tf.reshape(v, shape))


def gemm(node, ins, a, ctx):
    import tensorflow as tf

    x = to_onnx_order(ins[0])
    x = tf.transpose(x) if a.get("transA", 0) else x
    w = ins[1]
    if isinstance(w.v, np.ndarray):
        y = tf.matmul(x, (w.v.T if a.get("transB", 0) else w.v) * np.float32(a.get("alpha", 1.0)))
    else:
        y = tf.matmul(x, w.v, transpose_b=bool(a.get("transB", 0))) * a.get("alpha", 1.0)
    if len(ins) > 2 and ins[2] is not None:
        y = y + (_tf(ins[2]) * a.get("beta", 1.0))
    return _T(y)


def matmul(node, ins, a, ctx):
    import tensorflow as tf

    return _T(tf.matmul(to_onnx_order(ins[0]), to_onnx_order(ins[1])))


def _cl_axis(axis: int, rank: int) -> int:
    return CL_AXIS[axis % rank]


def concat(node, ins, a, ctx):
    import tensorflow as tf

    axis = a["axis"]
    if any(t.cl for t in ins):
        return _T(tf.concat([_to_cl(t) for t in ins], axis=_cl_axis(axis, 4)), cl=True)
    if all(isinstance(t.v, np.ndarray) for t in ins):
        return _T(np.concatenate([t.v for t in ins], axis=axis))
    return _T(tf.concat([_tf(t) for t in ins], axis=axis))


def softmax(node, ins, a, ctx):
    import tensorflow as tf

    x = ins[0]
    rank = x.v.shape.rank
    axis = a.get("axis", 1 if ctx["opset"] < 13 else -1)
    if ctx["opset"] < 13 and axis % rank != rank - 1:
        raise ConversionError(f"ONNX Softmax node {_label(node)!r} (opset {ctx['opset']}) flattens from axis {axis}; "
                              "edgekit converts softmax over the last axis.")
    return _T(tf.nn.softmax(x.v, axis=_cl_axis(axis, 4) if x.cl else axis), cl=x.cl)


def pad(node, ins, a, ctx):
    import tensorflow as tf

    mode = a.get("mode", "constant")
    p = [int(v) for v in (_const(ins[1], node, "pads") if len(ins) > 1 and ins[1] is not None else a["pads"])]
    value = float(_const(ins[2], node, "value")) if len(ins) > 2 and ins[2] is not None else a.get("value", 0.0)
    if mode not in ("constant", "reflect") or min(p) < 0 or (len(ins) > 3 and ins[3] is not None):
        raise ConversionError(f"ONNX Pad node {_label(node)!r} uses mode={mode}, negative pads or axes; edgekit converts "
                              "constant and reflect padding.")
    n = len(p) // 2
    pairs = [[p[i], p[i + n]] for i in range(n)]
    x = ins[0]
    if x.cl:
        pairs = [pairs[i] for i in TO_CL]
    return _T(tf.pad(_tf(x), pairs, mode=mode.upper(), constant_values=value if mode == "constant" else 0), cl=x.cl)


def transpose(node, ins, a, ctx):
    import tensorflow as tf

    x, perm = ins[0], list(a["perm"])
    if x.cl:
        perm = [CL_AXIS[p] for p in perm]
    elif perm == list(TO_ONNX) and not isinstance(x.v, np.ndarray):
        return _T(x.v, cl=True)  # NHWC -> NCHW (tf2onnx's input transpose): hold it channels-last as it is
    if perm == list(range(len(perm))):
        return _T(x.v)
    return _T(np.transpose(x.v, perm) if isinstance(x.v, np.ndarray) else tf.transpose(x.v, perm))


def squeeze(node, ins, a, ctx):
    import tensorflow as tf

    x = ins[0]
    axes = [int(v) for v in (_const(ins[1], node, "axes") if len(ins) > 1 and ins[1] is not None
                             else a.get("axes", []))]
    if node.op_type == "Unsqueeze":
        v = to_onnx_order(x)
        for ax in sorted(d % (v.shape.rank + len(axes)) for d in axes):
            v = tf.expand_dims(v, ax)
        return _T(v)
    if not axes:
        raise ConversionError(f"ONNX Squeeze node {_label(node)!r} has no axes; edgekit needs them explicit.")
    if x.cl and sorted(d % 4 for d in axes) == [2, 3]:  # (N, C, 1, 1) -> (N, C): the pooled map
        return _T(tf.squeeze(x.v, axis=[1, 2]))
    return _T(tf.squeeze(to_onnx_order(x), axis=axes))


def constant(node, ins, a, ctx):
    from onnx import numpy_helper

    if "value" not in a:
        raise ConversionError(f"ONNX Constant node {_label(node)!r} is not a tensor constant.")
    return _T(numpy_helper.to_array(a["value"]))


def identity(node, ins, a, ctx):
    return ins[0]


def _tf_unary(name: str) -> Callable[[Any, dict[str, Any]], Any]:
    def fn(x, a):
        import tensorflow as tf

        if name == "LeakyRelu":
            return tf.nn.leaky_relu(x, alpha=a.get("alpha", 0.01))
        return {"Relu": tf.nn.relu, "Sigmoid": tf.sigmoid, "Tanh": tf.tanh}[name](x)

    return fn


CONVERTERS: dict[str, Callable[..., _T]] = {
    "Conv": conv, "MaxPool": pool, "AveragePool": pool, "GlobalAveragePool": global_pool,
    "GlobalMaxPool": global_pool, "BatchNormalization": batch_norm, "Clip": clip, "Flatten": flatten,
    "Reshape": reshape, "Gemm": gemm, "MatMul": matmul, "Concat": concat, "Softmax": softmax, "Pad": pad,
    "Transpose": transpose, "Squeeze": squeeze, "Unsqueeze": squeeze, "Constant": constant, "Identity": identity, "Dropout": identity,
    **{op: binary for op in BINARY},
    **{op: unary(_tf_unary(op)) for op in ("Relu", "LeakyRelu", "Sigmoid", "Tanh")},
}


def check_convertible(proto: Any) -> None:
    """ConversionError naming the first op this converter does not know."""
    for n in proto.graph.node:
        if n.domain not in ("", "ai.onnx") or n.op_type not in CONVERTERS:
            op = f"{n.domain}:{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type
            raise ConversionError(f"ONNX op {op!r} (node {_label(n)!r}) has no TensorFlow conversion in edgekit; "
                                  f"supported: {', '.join(sorted(CONVERTERS))}.")


def onnx_to_tf(model: str | Path | Any) -> TfGraph:
    """A :class:`TfGraph` computing the ONNX model on float32 NHWC images (an NCHW model's input is
    transposed by construction, not by a Transpose op)."""
    import onnx
    import tensorflow as tf
    from onnx import numpy_helper

    proto = onnx.load(str(model)) if isinstance(model, (str, Path)) else model
    if proto.functions:
        from onnx.inliner import inline_local_functions

        proto = inline_local_functions(proto)
    check_convertible(proto)
    consts = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    inp = [v for v in proto.graph.input if v.name not in consts][0]
    dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim)
    nchw = guess_layout(dims) == vocab.NCHW
    image = (None, dims[2], dims[3], dims[1]) if nchw else (None, *dims[1:])
    ctx = {"opset": max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=13),
           "static_batch": dims[0]}
    out_name = proto.graph.output[0].name

    def run(x):
        env: dict[str, _T] = {k: _T(v) for k, v in consts.items()}
        env[inp.name] = _T(x, cl=nchw)
        for node in proto.graph.node:
            ins = [env[i] if i else None for i in node.input]
            env[node.output[0]] = CONVERTERS[node.op_type](node, ins, _attrs(node), ctx)
        return to_onnx_order(env[out_name])

    fn = tf.function(run, input_signature=[tf.TensorSpec(image, tf.float32, name="image")], autograph=False)
    holder = tf.Module()
    holder.serve = fn
    fn.get_concrete_function()  # trace now: a conversion error surfaces here, not in the exporter
    return TfGraph(fn, holder)
