"""ONNX -> TensorFlow in NHWC through onnx2tf, the maintained converter (pinned in pyproject.toml).

onnx2tf turns an ONNX graph into a tf_keras model whose image input is NHWC (an NCHW input is
transposed by construction). What edgekit adds around it:

- the graph is converted at batch 1, what every TFLite-family target runs (a model exported with
  a dynamic batch is fixed to 1; one exported with a fixed batch above 1 is refused with the
  exporter setting that fixes it, since its reshapes bake that batch in);
- an NHWC input (a tf2onnx export) is kept NHWC;
- patterns no edge runtime runs, or that quantize badly, are rewritten first into the same values
  (:mod:`edgekit.models.onnx_rewrites`): HardSigmoid, a padded MaxPool after a ReLU, torch's
  ``as_strided`` Gather;
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
from edgekit.models import onnx_rewrites as rewrites
from edgekit.models.layout import TfGraph, guess_layout, keras_graph

CONVERTER = "onnx2tf"
SAMPLE_SHAPE = (20, 128, 128, 3)  # what onnx2tf's download_test_image_data() returns


class ConversionError(InputError):
    """An ONNX graph that does not convert to TensorFlow (exit 2)."""


def converter_version() -> str:
    from importlib.metadata import version

    return f"{CONVERTER} {version(CONVERTER)}"


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


def convert_onnx(proto: Any) -> Any:
    """The tf_keras model onnx2tf builds from ``proto`` (a ModelProto with its weights loaded), its
    image input NHWC at batch 1."""
    import onnx

    if proto.functions:  # torch exports modules as model-local functions
        from onnx.inliner import inline_local_functions

        proto = inline_local_functions(proto)
    init = {t.name for t in proto.graph.initializer}
    inp = [v for v in proto.graph.input if v.name not in init][0]
    dims = rewrites.dims(inp)
    if dims and dims[0] not in (None, 0, 1):
        raise ConversionError(
            f"The ONNX model was exported with a fixed batch of {dims[0]} (input {inp.name!r} "
            f"{list(dims)}); TFLite targets run one image at a time and its reshapes bake that batch in: export it "
            "with a batch-1 example or a dynamic batch (torch.onnx.export(..., dynamic_shapes=...) or "
            "dynamic_axes={'input': {0: 'batch'}}).")
    proto = rewrites.for_edge(proto)
    try:  # onnx2tf decides layouts from the graph's shapes: give it every intermediate one
        proto = rewrites.gather_as_reshape(onnx.shape_inference.infer_shapes(proto, data_prop=True))
    except Exception:
        pass
    inp = [v for v in proto.graph.input if v.name not in init][0]
    keep_nhwc = [inp.name] if guess_layout(rewrites.dims(inp)) == vocab.NHWC else None
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
