"""Non-finite (NaN, inf) weights: refused when a model is loaded, before any converter or quantizer
sees them (a TFLite int8 quantizer fed inf weights crashes the process; onnxruntime's quantizer
asserts; a NaN weight makes every output NaN, which no comparison can judge).

:func:`nonfinite_weights` takes an ONNX ModelProto (initializers and ``Constant`` nodes, external
data read one tensor at a time), a tf_keras or Keras 3 model (its weights), or a loaded SavedModel
(its variables), and raises one :class:`~edgekit.errors.InputError` line naming the first tensor
that holds NaN or inf and how many of its values do.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgekit.errors import InputError

FLOAT_KINDS = "fc"  # numpy dtype kinds that can hold NaN/inf (float16/32/64, complex)


def count_nonfinite(values: Any) -> tuple[int, str]:
    """(number of NaN/inf values in ``values``, "NaN", "inf" or "NaN and inf"); (0, "") when none."""
    a = np.asarray(values)
    if a.dtype.kind not in FLOAT_KINDS:
        if a.dtype.name != "bfloat16":
            return 0, ""
        a = a.astype(np.float32)
    bad = ~np.isfinite(a)
    n = int(bad.sum())
    if not n:
        return 0, ""
    nan = bool(np.isnan(a).any())
    inf = bool(np.isinf(a).any())
    return n, "NaN and inf" if nan and inf else ("NaN" if nan else "inf")


def _refuse(who: str, n: int, kind: str, name: str) -> InputError:
    noun = "weight" if n == 1 else "weights"
    return InputError(f"{who} has {n} non-finite {noun} ({kind}) in {name!r}; edgekit refuses to convert it "
                      "(a NaN or inf weight makes every output meaningless): fix or retrain the model.")


def _onnx_tensors(proto: Any, folder: Path | None) -> Iterator[tuple[str, np.ndarray]]:
    """(name, values) of every float initializer and Constant node tensor, external data loaded
    one tensor at a time (never the whole model at once)."""
    from onnx import TensorProto, numpy_helper
    from onnx.external_data_helper import load_external_data_for_tensor, uses_external_data

    floats = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}
    tensors = list(proto.graph.initializer)
    nodes = list(proto.graph.node) + [n for f in proto.functions for n in f.node]
    tensors += [a.t for n in nodes if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
    for t in tensors:
        if t.data_type not in floats:
            continue
        if uses_external_data(t):
            if folder is None:
                continue
            copy = TensorProto()
            copy.CopyFrom(t)
            load_external_data_for_tensor(copy, str(folder))
            yield t.name, numpy_helper.to_array(copy)
            del copy
        else:
            yield t.name, numpy_helper.to_array(t)


def _variables(model: Any) -> Iterator[tuple[str, Any]]:
    """(name, variable) of a Keras model's weights (tf_keras and Keras 3) or a SavedModel's variables."""
    weights = getattr(model, "weights", None)
    if weights is None:
        weights = getattr(model, "variables", None) or ()
    for w in weights:
        name = getattr(w, "path", None) or getattr(w, "name", "?")
        yield str(name), w


def _as_numpy(v: Any) -> Any:
    return v.numpy() if hasattr(v, "numpy") else np.asarray(v)


def nonfinite_weights(model: Any, who: str = "The model", folder: str | Path | None = None) -> None:
    """InputError when ``model`` (an ONNX ModelProto, a Keras model, a loaded SavedModel) has a
    NaN or inf weight; ``folder``: where an ONNX model's external data files are."""
    if type(model).__name__ == "ModelProto":
        items: Iterator[tuple[str, Any]] = _onnx_tensors(model, Path(folder) if folder is not None else None)
    else:
        items = ((n, _as_numpy(v)) for n, v in _variables(model))
    for name, values in items:
        n, kind = count_nonfinite(values)
        if n:
            raise _refuse(who, n, kind, name)


def check_handle(handle: Any) -> None:
    """:func:`nonfinite_weights` of a loaded handle's model, whatever its format (an ONNX file is
    checked by its format loader before anything runs it)."""
    from edgekit import vocab

    if handle.format == vocab.FORMAT_ONNX:
        return
    who = repr(handle.path) if handle.path else "The model"
    model = handle.info.get("keras3_model", handle.model)
    if handle.format == vocab.FORMAT_SAVEDMODEL:  # the variables the served signature captures
        model = getattr(handle.model, "signatures", {}).get(handle.info.get("signature"), handle.model)
    nonfinite_weights(model, who)
