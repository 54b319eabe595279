"""The ONNX format: an ``.onnx`` file (``torch.onnx.export``, tf2onnx), run by onnxruntime.

A file is parsed and checked (``onnx.checker``) before anything runs it. Refused: ops of a
custom domain (anything but the ONNX standard domains and ``com.microsoft``, whose contrib ops
are built into onnxruntime; a custom domain needs a native op library that would have to be
loaded from the user), unless the model defines them itself as local functions; and external
data files outside the model's folder. onnxruntime then loads and runs the model once in a
child process (:func:`edgekit.validate.safety.probe_in_subprocess`) before this process does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit import vocab
from edgekit.errors import InputError
from edgekit.models.handle import MODEL_FORMATS, ModelHandle, TensorSpec
from edgekit.models.io import MODEL_SUFFIXES
from edgekit.models.layout import TfGraph, cached, guess_layout
from edgekit.models.weights_check import nonfinite_weights

STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")
RUNTIME_DOMAINS = ("com.microsoft",)  # contrib ops built into onnxruntime (no user code)
MAX_SNIFF_BYTES = 64 << 20  # detect() parses files without the .onnx suffix only up to this size
ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64"}


def _dims(value_info: Any) -> tuple[int | None, ...]:
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim)


def check_domains(proto: Any, where: str) -> list[str]:
    """InputError naming the first op of a custom domain; returns the onnxruntime contrib ops used."""
    local = {(f.domain, f.name) for f in proto.functions}
    nodes = list(proto.graph.node) + [n for f in proto.functions for n in f.node]
    contrib = []
    for n in nodes:
        if n.domain in STANDARD_DOMAINS or (n.domain, n.op_type) in local:
            continue
        if n.domain in RUNTIME_DOMAINS:
            contrib.append(n.op_type)
            continue
        raise InputError(f"{where} uses op {n.op_type!r} of the custom domain {n.domain!r} (node {n.name!r}), "
                         "which needs a native op library; edgekit runs only standard ONNX ops.")
    return sorted(set(contrib))


def check_external_data(proto: Any, path: Path) -> list[str]:
    """The external data files of ``proto``; InputError when one lies outside the model's folder."""
    from onnx.external_data_helper import ExternalDataInfo, _get_all_tensors, uses_external_data

    folder = path.resolve().parent
    files = []
    for t in _get_all_tensors(proto):
        if not uses_external_data(t):
            continue
        loc = ExternalDataInfo(t).location
        target = (folder / loc).resolve()
        if Path(loc).is_absolute() or not target.is_relative_to(folder):
            raise InputError(f"{str(path)!r} points tensor {t.name!r} at external data {loc!r} outside the model's "
                             "folder; refusing to read it (move the data file next to the model).")
        if not target.is_file():
            raise InputError(f"{str(path)!r} needs the external data file {loc!r} next to it; it is missing.")
        files.append(loc)
    return sorted(set(files))


def read_onnx(path: Path) -> Any:
    """Parse ``path`` without its external data and vet it: InputError with one line if it is not safe."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        msg = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise InputError(f"{str(path)!r} is not a valid ONNX model: {msg}") from None
    if not proto.graph.node:
        raise InputError(f"{str(path)!r} is not a valid ONNX model: its graph has no nodes.")
    return proto


def check_dims(proto: Any, path: Path) -> None:
    """InputError naming the first graph input or output with a zero or negative static dimension
    (an output of zero classes included): no runtime can run it and edgekit could not judge it."""
    for kind, values in (("input", proto.graph.input), ("output", proto.graph.output)):
        init = {t.name for t in proto.graph.initializer}
        for v in values:
            if v.name in init:
                continue
            dims = [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
            bad = [i for i, d in enumerate(dims) if d is not None and d <= 0]
            if bad:
                what = "zero classes" if kind == "output" and bad[-1] == len(dims) - 1 and dims[-1] == 0 else \
                    f"dimension {bad[0]} of size {dims[bad[0]]}"
                raise InputError(f"{str(path)!r} declares graph {kind} {v.name!r} with shape "
                                 f"{[d if d is not None else '?' for d in dims]}: {what}; every dimension must be "
                                 "positive (re-export the model with its real input and output sizes).")


class OnnxFormat:
    name = vocab.FORMAT_ONNX
    description = "an .onnx file (torch.onnx.export, tf2onnx), run by onnxruntime"

    def detect(self, path: Path) -> bool:
        if not path.is_file():
            return False
        if path.suffix.lower() == ".onnx":
            return True
        if path.suffix in MODEL_SUFFIXES or path.stat().st_size > MAX_SNIFF_BYTES:
            return False
        with path.open("rb") as f:
            if f.read(1) != b"\x08":  # a serialized ModelProto starts with field 1, ir_version (a varint)
                return False
        try:
            import onnx

            proto = onnx.load_model_from_string(path.read_bytes())
            return bool(proto.graph.node) and bool(proto.opset_import)
        except Exception:
            return False

    def load(self, path: Path, trust: bool, **options: Any) -> ModelHandle:
        from edgekit.validate.safety import check_file, probe_in_subprocess

        proto = read_onnx(path)
        contrib = check_domains(proto, repr(str(path)))
        data_files = check_external_data(proto, path)
        check_file(path, vocab.ONNXRUNTIME)  # full load (with external data) + onnx.checker
        nonfinite_weights(proto, repr(str(path)), path.resolve().parent)  # before any runtime or quantizer
        init = {t.name for t in proto.graph.initializer}
        inputs = [v for v in proto.graph.input if v.name not in init]
        if len(inputs) != 1:
            raise InputError(f"{str(path)!r} has {len(inputs)} graph inputs ({', '.join(v.name for v in inputs)}); "
                             "edgekit needs one image input.")
        shape = _dims(inputs[0])
        if len(shape) != 4:
            raise InputError(f"{str(path)!r} takes an input of rank {len(shape)} {list(shape)}; edgekit needs images "
                             "of rank 4: (N, C, H, W) or (N, H, W, C).")
        check_dims(proto, path)
        probe_in_subprocess(path, vocab.ONNXRUNTIME)
        return onnx_handle(path, proto, inputs[0].name, shape, {"contrib_ops": contrib, "external_data": data_files})


def onnx_handle(path: Path, proto: Any, in_name: str, shape: tuple[int | None, ...], info: dict[str, Any]
                ) -> ModelHandle:
    """The handle of a vetted ONNX file: onnxruntime predicts, the TF graph is built on demand."""
    from edgekit.runtimes.ort import OrtRunner

    layout = guess_layout(shape)
    nchw = layout == vocab.NCHW
    runner = OrtRunner(str(path))  # NHWC images in; a fixed batch runs that many at a time
    sess = runner.sess

    def predict(x: np.ndarray) -> np.ndarray:
        return runner.predict(np.asarray(x, np.float32))

    def tf_graph() -> TfGraph:
        from edgekit.models.onnx_to_tf import proven_graph

        graph, info["conversion"] = proven_graph(path, predict)
        return graph

    nhwc = (shape[2], shape[3], shape[1]) if nchw else shape[1:]
    info.update({"tf_graph": cached(tf_graph), "opset": max((o.version for o in proto.opset_import
                                                             if o.domain in ("", "ai.onnx")), default=None),
                 "outputs_are_probabilities": outputs_are_probabilities(predict, nhwc)})
    if nchw:
        info["layout_note"] = (f"input {list(shape)} read as (N, C, H, W); edgekit transposes its NHWC images "
                               "to NCHW for onnxruntime")
    outputs = [TensorSpec(o.name, tuple(d if isinstance(d, int) else None for d in o.shape[1:]),
                          ORT_TYPES.get(o.type, o.type)) for o in sess.get_outputs()]
    return ModelHandle(model=proto, format=vocab.FORMAT_ONNX, framework="onnxruntime", layout=layout,
                       inputs=[TensorSpec(in_name, tuple(shape[1:]))], outputs=outputs, path=str(path),
                       predict_fn=predict, info=info)


def outputs_are_probabilities(predict: Any, nhwc: tuple[int | None, ...], n: int = 8) -> bool | None:
    """True when the first output's rows are probabilities (in [0, 1], summing to 1) on random images;
    False for logits; None when the image size is symbolic. Agreement uses top-1 either way."""
    if any(d is None for d in nhwc):
        return None
    y = predict(np.random.default_rng(0).uniform(0, 1, (n, *nhwc)).astype(np.float32))
    if y.ndim < 2 or y.shape[0] != n or y.size == 0:
        raise InputError(f"The ONNX model gives outputs of shape {list(y.shape)} for {n} images; edgekit needs one "
                         "row of class scores per image (N, classes), with at least one class.")
    rows = y.reshape(len(y), -1)
    if not np.isfinite(rows).all():
        return None  # judged by validation, which fails on non-finite outputs
    return bool(rows.min() >= 0 and rows.max() <= 1 and np.allclose(rows.sum(axis=1), 1, atol=1e-3))


def quantize_int8(handle: ModelHandle, images: np.ndarray, method: str = "minmax") -> bytes:
    """onnx-int8 from the user's ONNX file: onnxruntime static QDQ quantization calibrated on
    ``images`` (float32 NHWC, as the dataset holds them; transposed here for an NCHW model)."""
    import onnx

    from edgekit.export.onnx import quantize_onnx

    if handle.format != vocab.FORMAT_ONNX or not handle.path:
        raise InputError(f"quantize_int8 needs the handle of an ONNX file. Received: a {handle.format} handle.")
    x = np.asarray(images, np.float32)
    x = x.transpose(0, 3, 1, 2) if handle.layout == vocab.NCHW else x
    return quantize_onnx(onnx.load(handle.path), x, method, input_name=handle.inputs[0].name)


MODEL_FORMATS.add(vocab.FORMAT_ONNX, OnnxFormat())
