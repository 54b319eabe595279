"""ONNX -> TensorFlow in NHWC through onnx2tf, the maintained converter (pinned in pyproject.toml).

onnx2tf turns an ONNX graph into a tf_keras model whose image input is NHWC (an NCHW input is
transposed by construction). What edgekit adds around it:

- the graph is converted at batch 1, what every TFLite-family target runs (a model exported with
  a dynamic batch is fixed to 1; one exported with a fixed batch above 1 is refused with the
  exporter setting that fixes it, since its reshapes bake that batch in);
- an NHWC input (a tf2onnx export) is kept NHWC;
- no network and no files: onnx2tf would download sample images for its own checks of a small
  fixed-batch RGB model, which are replaced by generated ones, and it writes nothing here (the
  graph is passed in memory, its output folder is a temporary one that is removed);
- its console output is captured, and a failure becomes one :class:`ConversionError` line naming
  the ONNX node, its op and what the user can do.

The caller (:mod:`edgekit.models.onnx_format`) proves the TensorFlow graph against onnxruntime
before anything is exported from it, and the validator compares every artifact with onnxruntime
on the original file.
"""
from __future__ import annotations

import contextlib
import io
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import vocab
from edgekit.errors import InputError
from edgekit.models.layout import TfGraph, guess_layout, keras_graph

CONVERTER = "onnx2tf"
SAMPLE_SHAPE = (20, 128, 128, 3)  # what onnx2tf's download_test_image_data() returns


class ConversionError(InputError):
    """An ONNX graph that does not convert to TensorFlow (exit 2)."""


def converter_version() -> str:
    from importlib.metadata import version

    return f"{CONVERTER} {version(CONVERTER)}"


def _dims(value_info: Any) -> tuple[int | None, ...]:
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim)


def _advice(op: str | None, message: str) -> str:
    """What a user can do about a node that does not convert."""
    if "not yet implemented" in message or "No module named 'onnx2tf.ops" in message:
        return (f"onnx2tf has no conversion for {op}: re-export with another opset (torch.onnx.export(..., "
                "opset_version=17)) or replace the layer that produces it with standard ops")
    return ("re-export with dynamo=False or another opset (torch.onnx.export(..., opset_version=17)), or keep "
            "the model for the onnx and onnx-int8 targets, which run it as it is")


BOILERPLATE = ("The trace log is below", "input_onnx_file_path", "onnx_op_name", "Read this", "Alternatively",
               "If the input OP", "Also, for models", "Exception encountered", "Call arguments")


def _message(e: BaseException, log: str) -> str:
    """The informative line of an onnx2tf failure: its own error line, else the exception's."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).replace("ERROR:", "").strip()
             for line in log.splitlines() if "ERROR" in line]
    lines += [line.strip() for line in str(e).splitlines()]
    useful = [line for line in lines if line and not line.startswith(BOILERPLATE)]
    return useful[0] if useful else type(e).__name__


def _failure(e: BaseException, log: str, proto: Any) -> ConversionError:
    """One line naming the failing node from onnx2tf's exception and captured log."""
    node = getattr(e, "onnx_op_name", None) or None
    message = _message(e, log)
    ops = {n.name: n.op_type for n in proto.graph.node}
    missing = re.match(r"(\w+) OP is not yet implemented", message)
    op = (ops.get(node) if node else None) or (missing.group(1) if missing else None)
    where = f"node {node!r} ({op})" if node else (f"op {op}" if op else "a node")
    return ConversionError(f"The ONNX model does not convert to TensorFlow at {where}: {message[:240].rstrip('.')}; "
                           f"{_advice(op, message)}.")


CONVERT_RECURSION_LIMIT = 10_000  # deep graphs recurse in onnx2tf; Python's default is 1,000


@contextlib.contextmanager
def _offline(sample: np.ndarray):
    """onnx2tf with its sample-image download replaced, every HTTP request refused, and the recursion
    limit raised only while it converts: importing onnx2tf sets it to 2**31 - 1 for the whole process,
    where a deep recursion anywhere (a nested JSON file) then crashes the interpreter instead of
    raising RecursionError."""
    import sys

    limit = sys.getrecursionlimit()
    import onnx2tf.onnx2tf as entry
    import onnx2tf.utils.common_functions as common

    sys.setrecursionlimit(max(limit, CONVERT_RECURSION_LIMIT))

    def refuse(*_: Any, **__: Any) -> Any:
        raise ConnectionError("edgekit converts offline")

    saved = (entry.download_test_image_data, common.download_test_image_data, common.requests.get)
    entry.download_test_image_data = common.download_test_image_data = lambda: sample
    common.requests.get = refuse
    try:
        yield
    finally:
        entry.download_test_image_data, common.download_test_image_data, common.requests.get = saved
        sys.setrecursionlimit(limit)


def relu6_hard_sigmoid(proto: Any) -> Any:
    """``proto`` with each HardSigmoid(x) = clip(a*x + b, 0, 1) written as clip(6a*x + 6b, 0, 6) / 6.

    The same function; TensorFlow Lite's converter turns the first into RELU_0_TO_1, an op that
    neither the Edge TPU compiler nor TFLite Micro knows, and the second into RELU6, which both run
    (torchvision's MobileNetV3 squeeze-excite gates are HardSigmoid)."""
    from onnx import helper, numpy_helper

    nodes = list(proto.graph.node)
    if not any(n.op_type == "HardSigmoid" for n in nodes):
        return proto
    out = type(proto)()
    out.CopyFrom(proto)
    del out.graph.node[:]
    consts = []
    for i, n in enumerate(nodes):
        if n.op_type != "HardSigmoid":
            out.graph.node.append(n)
            continue
        a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
        alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
        k = f"edgekit_hsig{i}"
        for name, v in ((f"{k}_a", 6 * alpha), (f"{k}_b", 6 * beta), (f"{k}_lo", 0.0), (f"{k}_hi", 6.0),
                        (f"{k}_s", 1 / 6)):
            consts.append(numpy_helper.from_array(np.array(v, np.float32), name))
        out.graph.node.extend([
            helper.make_node("Mul", [n.input[0], f"{k}_a"], [f"{k}_ax"], name=f"{n.name or k}_mul"),
            helper.make_node("Add", [f"{k}_ax", f"{k}_b"], [f"{k}_axb"], name=f"{n.name or k}_add"),
            helper.make_node("Clip", [f"{k}_axb", f"{k}_lo", f"{k}_hi"], [f"{k}_r6"], name=f"{n.name or k}_relu6"),
            helper.make_node("Mul", [f"{k}_r6", f"{k}_s"], [n.output[0]], name=f"{n.name or k}_scale")])
    out.graph.initializer.extend(consts)
    return out


NON_NEGATIVE = ("Relu", "Sigmoid", "HardSigmoid", "Softplus")


def zero_padded_max_pool(proto: Any) -> Any:
    """``proto`` with each padded MaxPool whose input is never negative (it follows a Relu) split
    into Pad(0) + MaxPool without pads: the same result.

    onnx2tf pads a MaxPool with -inf; calibrated to int8 that constant gets a scale of ~1e36, the
    tensor's real values round to one level (the int8 model is garbage and XNNPACK refuses it).
    Zero padding quantizes like any activation (torchvision's ResNet stem: conv, bn, relu, maxpool)."""
    from onnx import helper, numpy_helper

    nodes = list(proto.graph.node)
    producer = {o: n for n in nodes for o in n.output}

    def pads_of(n: Any) -> list[int]:
        return [int(v) for a in n.attribute if a.name == "pads" for v in a.ints]

    def non_negative(name: str) -> bool:
        p = producer.get(name)
        if p is None:
            return False
        if p.op_type in NON_NEGATIVE:
            return True
        return p.op_type == "Clip" and len(p.input) > 1 and _const_value(proto, p.input[1], -1.0) >= 0

    todo = [n for n in nodes if n.op_type == "MaxPool" and any(pads_of(n)) and non_negative(n.input[0])
            and all(a.name != "auto_pad" or helper.get_attribute_value(a) in (b"NOTSET", "NOTSET")
                    for a in n.attribute)]
    if not todo:
        return proto
    out = type(proto)()
    out.CopyFrom(proto)
    del out.graph.node[:]
    for i, n in enumerate(nodes):
        if n not in todo:
            out.graph.node.append(n)
            continue
        pads = pads_of(n)
        k = f"edgekit_mpad{i}"
        half = len(pads) // 2
        out.graph.initializer.append(numpy_helper.from_array(
            np.array([0, 0, *pads[:half], 0, 0, *pads[half:]], np.int64), f"{k}_pads"))
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute if a.name != "pads"}
        out.graph.node.extend([
            helper.make_node("Pad", [n.input[0], f"{k}_pads"], [f"{k}_x"], name=f"{n.name or k}_pad", mode="constant"),
            helper.make_node("MaxPool", [f"{k}_x"], list(n.output), name=n.name or k, **attrs)])
    return out


def gather_as_reshape(proto: Any) -> Any:
    """``proto`` with each Gather that only re-lays out a 1-D tensor (constant indices 0, 1, ..., N-1
    over all N elements, on axis 0) written as a Reshape to the indices' shape: the same values.

    torch's dynamo exporter writes ``AdaptiveAvgPool2d(1)`` + ``Flatten`` as ReduceMean, Reshape(-1),
    Gather(arange), Reshape (its ``as_strided``); a GATHER op runs on neither the Edge TPU nor TFLite
    Micro. Needs the graph's inferred shapes (``value_info``)."""
    from onnx import helper, numpy_helper

    init = {t.name: t for t in proto.graph.initializer}
    shapes = {v.name: _dims(v) for v in list(proto.graph.value_info) + list(proto.graph.input)}
    todo: dict[int, tuple[int, ...]] = {}  # node index -> the indices' shape
    for i, n in enumerate(proto.graph.node):
        if n.op_type != "Gather" or n.input[1] not in init:
            continue
        axis = next((helper.get_attribute_value(a) for a in n.attribute if a.name == "axis"), 0)
        idx = numpy_helper.to_array(init[n.input[1]])
        data = shapes.get(n.input[0])
        if axis == 0 and data is not None and len(data) == 1 and data[0] == idx.size \
                and np.array_equal(idx.reshape(-1), np.arange(idx.size)):
            todo[i] = idx.shape
    if not todo:
        return proto
    out = type(proto)()
    out.CopyFrom(proto)
    del out.graph.node[:]
    for i, n in enumerate(proto.graph.node):
        if i not in todo:
            out.graph.node.append(n)
            continue
        shape_name = f"edgekit_gather{i}_shape"
        out.graph.initializer.append(numpy_helper.from_array(np.array(todo[i], np.int64), shape_name))
        out.graph.node.append(helper.make_node("Reshape", [n.input[0], shape_name], list(n.output),
                                               name=n.name or f"edgekit_gather{i}"))
    return out


def _batch_one(proto: Any) -> Any:
    """``proto`` with a symbolic batch axis of its image input fixed to 1 (what the TFLite targets run),
    so that shape inference gives every tensor concrete dimensions."""
    init = {t.name for t in proto.graph.initializer}
    inp = [v for v in proto.graph.input if v.name not in init][0]
    dims = inp.type.tensor_type.shape.dim
    if dims and not dims[0].HasField("dim_value"):
        out = type(proto)()
        out.CopyFrom(proto)
        first = [v for v in out.graph.input if v.name == inp.name][0].type.tensor_type.shape.dim[0]
        first.Clear()
        first.dim_value = 1
        return out
    return proto


def _const_value(proto: Any, name: str, default: float) -> float:
    """The scalar initializer or Constant called ``name``, else ``default``."""
    from onnx import numpy_helper

    for t in proto.graph.initializer:
        if t.name == name:
            return float(numpy_helper.to_array(t).reshape(-1)[0])
    for n in proto.graph.node:
        if n.op_type == "Constant" and n.output[0] == name:
            for a in n.attribute:
                if a.name == "value":
                    return float(numpy_helper.to_array(a.t).reshape(-1)[0])
    return default


def convert_onnx(proto: Any) -> Any:
    """The tf_keras model onnx2tf builds from ``proto`` (a ModelProto with its weights loaded), its
    image input NHWC at batch 1."""
    import onnx

    if proto.functions:  # torch exports modules as model-local functions
        from onnx.inliner import inline_local_functions

        proto = inline_local_functions(proto)
    init = {t.name for t in proto.graph.initializer}
    inp = [v for v in proto.graph.input if v.name not in init][0]
    dims = _dims(inp)
    if dims and dims[0] not in (None, 0, 1):
        raise ConversionError(
            f"The ONNX model was exported with a fixed batch of {dims[0]} (input {inp.name!r} "
            f"{list(dims)}); TFLite targets run one image at a time and its reshapes bake that batch in: export it "
            "with a batch-1 example or a dynamic batch (torch.onnx.export(..., dynamic_shapes=...) or "
            "dynamic_axes={'input': {0: 'batch'}}).")
    proto = zero_padded_max_pool(relu6_hard_sigmoid(_batch_one(proto)))
    try:  # onnx2tf decides layouts from the graph's shapes: give it every intermediate one
        proto = gather_as_reshape(onnx.shape_inference.infer_shapes(proto, data_prop=True))
    except Exception:
        pass
    inp = [v for v in proto.graph.input if v.name not in init][0]
    keep_nhwc = [inp.name] if guess_layout(_dims(inp)) == vocab.NHWC else None
    sample = np.random.default_rng(0).uniform(0, 1, SAMPLE_SHAPE).astype(np.float32)
    out_dir = tempfile.mkdtemp(prefix="edgekit-onnx2tf-")
    log = io.StringIO()
    try:
        with _offline(sample), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            import onnx2tf

            return onnx2tf.convert(onnx_graph=proto, output_folder_path=out_dir, disable_model_save=True,
                                   non_verbose=True, verbosity="error", not_use_onnxsim=True, batch_size=1,
                                   keep_nwc_or_nhwc_or_ndhwc_input_names=keep_nhwc)
    except (Exception, SystemExit) as e:  # onnx2tf ends some failures with sys.exit(1)
        raise _failure(e, log.getvalue(), proto) from None
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def onnx_to_tf(model: str | Path | Any) -> TfGraph:
    """A :class:`TfGraph` computing the ONNX model (a path or a ModelProto) on float32 NHWC images,
    at batch 1 (``graph.batch``)."""
    import onnx

    proto = onnx.load(str(model)) if isinstance(model, (str, Path)) else model
    return keras_graph(convert_onnx(proto), keep_batch=True)


PROOF_IMAGES = 8
TOLERANCE = 1e-4  # max |diff| against onnxruntime, relative to the output's scale (at least 1)


def proven_graph(path: str | Path, predict: Any) -> tuple[TfGraph, dict[str, Any]]:
    """:func:`onnx_to_tf` of the file at ``path``, proven against ``predict`` (onnxruntime on the
    original file) on random [0, 1) images: ConversionError when they differ; the facts for
    ``handle.info["conversion"]``."""
    import time

    t0 = time.perf_counter()
    graph = onnx_to_tf(path)
    seconds = time.perf_counter() - t0
    facts: dict[str, Any] = {"converter": converter_version(), "batch": graph.batch, "seconds": round(seconds, 2)}
    if any(d is None for d in graph.input_shape):
        return graph, {**facts, "proved_on": None}
    x = np.random.default_rng(0).uniform(0, 1, (PROOF_IMAGES, *graph.input_shape)).astype(np.float32)
    want = predict(x)
    got = np.asarray(graph(x), np.float32).reshape(want.shape)
    diff = float(np.max(np.abs(got - want)))
    limit = TOLERANCE * max(1.0, float(np.max(np.abs(want))))
    if not diff <= limit:
        raise ConversionError(f"onnx2tf's TensorFlow graph differs from onnxruntime by max |diff| {diff:.3g} (limit "
                              f"{limit:.3g}) on {PROOF_IMAGES} random images; the TFLite targets are not built from "
                              "it. The onnx and onnx-int8 targets run the model as it is.")
    return graph, {**facts, "max_abs_diff": diff, "proved_on": f"{PROOF_IMAGES} random [0, 1) images"}
