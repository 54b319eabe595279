"""``diagnose``: which Keras layer costs an int8 artifact its accuracy, and which to keep in float."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekit.data import Dataset
from edgekit.diagnose.config import REPAIRS
from edgekit.diagnose.layers import LayerError, layer_errors
from edgekit.errors import UsageError
from edgekit.vocab import LITERT, ONNX_INT8, ONNXRUNTIME, TFLITE_INT8

QUANTIZED = {"int8", "uint8", "int16"}


@dataclasses.dataclass
class DiagnoseResult:
    """Per-layer errors (ranked, worst first) and the accuracies they are measured against."""

    artifact: str
    samples: int
    float_accuracy: float
    artifact_accuracy: float
    reexport_accuracy: float | None  # tflite-int8 re-exported here: the leave-one-out baseline
    layers: list[LayerError]
    fix: dict[str, Any] | None = None
    target: str = TFLITE_INT8  # the export target the artifact is (and the repairs re-export)
    reexport_agreement_pct: float | None = None  # the leave-one-out baseline's top-1 agreement with float

    @property
    def drop_pt(self) -> float:
        return 100 * (self.float_accuracy - self.artifact_accuracy)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "layers"}
        return {**d, "drop_pt": self.drop_pt, "layers": [r.to_dict() for r in self.layers]}


TARGET_OF = {".tflite": TFLITE_INT8, ".onnx": ONNX_INT8}  # artifact suffix -> the target diagnose re-exports


class Reexport:
    """Re-exports of ``model`` to ``target`` (tflite-int8 or onnx-int8) calibrated on ``rep``,
    with some layers repaired, and their accuracy measured in the target's runtime."""

    def __init__(self, model: Any, target: str, rep: np.ndarray):
        self.model, self.target, self.rep = model, target, rep
        self._float_onnx: Any = None

    def __call__(self, keep_float: tuple[str, ...] = (), int16: tuple[str, ...] = ()) -> bytes:
        if self.target == TFLITE_INT8:
            from edgekit.export.convert import to_tflite

            return to_tflite(self.model, "int8", self.rep, keep_float=keep_float, int16=int16)
        if int16:
            check_repair(self.target, "int16")
        import functools

        from edgekit.export.layermap import onnx_nodes
        from edgekit.export.onnx import keras_to_onnx, quantize_onnx

        if self._float_onnx is None:
            self._float_onnx = keras_to_onnx(self.model, tuple(self.model.input_shape[1:]))
        exclude = functools.partial(onnx_nodes, self.model, layers=keep_float, option="keep_float") \
            if keep_float else None
        return quantize_onnx(self._float_onnx, self.rep, exclude=exclude)

    def accuracy(self, data: bytes, x: np.ndarray, y: np.ndarray) -> float:
        return runtime_accuracy(self.target, data, x, y)

    def scores(self, data: bytes, x: np.ndarray, y: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
        """(accuracy, top-1 agreement in % with the float labels ``ref``) of the bytes in the runtime."""
        from edgekit.validate.metrics import accuracy

        probs = runtime_predict(self.target, data, x)
        return accuracy(probs, y), 100 * float((probs.argmax(1) == ref).mean())


def check_repair(target: str, repair: str) -> None:
    """UsageError for a repair the target has not (int16 is tflite-int8 only), or a missing quantizer."""
    if repair not in REPAIRS:
        from edgekit.registry import unknown_name

        raise unknown_name("repair", repair, list(REPAIRS))
    if repair == "int16" and target != TFLITE_INT8:
        raise UsageError(f"int16 (16-bit activations) is a tflite-int8 repair; an {target} artifact repairs with "
                         f"keep-float (its nodes left unquantized). Received: int16 for {target}.")
    if repair == "int16":
        from edgekit.export.int16 import require_int16

        require_int16()


def holdout_sample(dataset: Dataset, samples: int) -> tuple[Any, np.ndarray]:
    """``(images, labels)`` of the first ``samples`` holdout images; a split stays a view
    (:meth:`~edgekit.data.store.Images.take`), read a batch at a time by each pass over it."""
    n = min(int(samples), len(dataset.y_test))
    return dataset.x_test.take(np.arange(n)), dataset.y_test[:n]


def runtime_predict(target: str, data: bytes, x: np.ndarray) -> np.ndarray:
    """Outputs of the artifact bytes ``data`` of ``target`` on ``x`` in its runtime (LiteRT, onnxruntime)."""
    if target == ONNX_INT8:
        from edgekit.runtimes.ort import OrtRunner

        return OrtRunner(data).predict(x)
    from edgekit.runtimes.litert import LiteRTRunner

    return LiteRTRunner(data).predict(x)


def runtime_accuracy(target: str, data: bytes, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of the artifact bytes ``data`` of ``target`` in its runtime (LiteRT, onnxruntime)."""
    from edgekit.validate.metrics import accuracy

    return accuracy(runtime_predict(target, data, x), y)


def check_artifact(data: bytes, path: str) -> Any:
    """The parsed flatbuffer; UsageError for a float artifact (nothing to diagnose)."""
    from edgekit.formats.tflite_flatbuffer import read_tflite

    graph = read_tflite(data, "artifact")
    if not graph.dtypes(constant=False) & QUANTIZED:
        raise UsageError(f"{path} has only float activations: nothing to diagnose (diagnose compares a quantized "
                         f"artifact, e.g. tflite-int8, with its float model). Received: {path}.")
    return graph


def _check_export_of(model: Any, have: list[int], outputs: set[str], groups: list, path: str) -> None:
    """UsageError (one line) when an artifact with input shape ``have`` (batch aside) and graph
    output names ``outputs`` is not a conversion of ``model``."""
    want = [int(d) for d in model.input_shape[1:]]
    if have != want or not any(g.tensor not in outputs for g in groups):
        raise UsageError(f"{path} is not an export of this model: its input is {have} (the model's {want}) and "
                         f"{sum(g.tensor not in outputs for g in groups)} of its tensors name the model's layers. "
                         f"Received: {path}.")


def _tflite_rows(model: Any, data: bytes, path: str, x: np.ndarray, say: Callable[[str], None]):
    from edgekit.export.layermap import groups_of_graph

    graph = check_artifact(data, path)
    groups = groups_of_graph(model, graph)
    _check_export_of(model, [int(d) for d in graph.input_tensors[0].shape[1:]],
                     {t.name for t in graph.output_tensors}, groups, path)
    rows, probs = layer_errors(model, data, groups, x, say)
    return groups, rows, probs


def _onnx_rows(model: Any, data: bytes, path: str, x: np.ndarray, say: Callable[[str], None]):
    import onnx

    from edgekit.diagnose.onnx_layers import is_quantized, onnx_groups, onnx_layer_errors

    proto = onnx.load_from_string(data)
    if not is_quantized(proto):
        raise UsageError(f"{path} has no quantized nodes: nothing to diagnose (diagnose compares a quantized "
                         f"artifact, e.g. onnx-int8, with its float model). Received: {path}.")
    dims = proto.graph.input[0].type.tensor_type.shape.dim[1:]
    have = [d.dim_value if d.HasField("dim_value") else -1 for d in dims]
    if have != [int(d) for d in model.input_shape[1:]]:
        _check_export_of(model, have, set(), [], path)
    groups, read = onnx_groups(model, proto, x[:1])
    _check_export_of(model, have, {proto.graph.output[0].name}, groups, path)
    return groups, onnx_layer_errors(model, proto, groups, read, x, say)


def diagnose(model_or_path: Any, artifact: str | Path, dataset: Dataset, *, samples: int = 500,
             leave_one_out: bool = True, representative_samples: int = 300,
             progress: Callable[[str], None] | None = None) -> DiagnoseResult:
    """Per-layer error of the quantized ``artifact`` (.tflite: LiteRT's intermediate tensors;
    .onnx: onnxruntime's, :mod:`edgekit.diagnose.onnx_layers`) against its float Keras model on
    ``samples`` holdout images of ``dataset``; with ``leave_one_out``, the accuracy each layer
    group recovers when it alone stays float (tflite-int8 or onnx-int8 re-exported with it in
    ``keep_float``, measured in the runtime against the same re-export without it)."""
    from edgekit.models import check_fits, load
    from edgekit.validate.metrics import accuracy
    from edgekit.validate.safety import safe_check

    say = progress or (lambda _m: None)
    path = str(artifact)
    target = TARGET_OF.get(Path(path).suffix.lower())
    if target is None:
        raise UsageError(f"diagnose takes a quantized .tflite (tflite-int8) or .onnx (onnx-int8) artifact. "
                         f"Received: {path}.")
    safe_check(path, LITERT if target == TFLITE_INT8 else ONNXRUNTIME)  # untrusted: parsed, then run in a child
    data = Path(path).read_bytes()
    handle = load(model_or_path)
    model = handle.keras_model("diagnose")
    check_fits(handle, dataset)
    x, y = holdout_sample(dataset, samples)
    if target == TFLITE_INT8:
        groups, rows, _ = _tflite_rows(model, data, path, x, say)
    else:
        groups, rows = _onnx_rows(model, data, path, x, say)
    # the artifact as deployed (LiteRT with XNNPACK, whose int8 kernels round differently from the
    # builtin ones that keep the intermediate tensors; onnxruntime without the added outputs)
    artifact_acc = runtime_accuracy(target, data, x, y)
    float_probs = handle.predict(x)
    result = DiagnoseResult(path, int(len(x)), accuracy(float_probs, y), artifact_acc, None, rows, target=target)
    if leave_one_out:
        rep = dataset.representative(min(representative_samples, len(dataset.x_train)))
        make = Reexport(model, target, rep)
        say(f"{target}: re-exported as the leave-one-out baseline")
        base, result.reexport_agreement_pct = make.scores(make(), x, y, float_probs.argmax(1))
        result.reexport_accuracy = base
        for g, r in zip(groups, rows):
            say(f"leave-one-out: {g.name} in float")
            r.loo_accuracy = make.accuracy(make((g.output_layer,)), x, y)
            r.recovered_pt = 100 * (r.loo_accuracy - base)
    result.layers = sorted(rows, key=lambda r: -r.nsr_added)
    return result


def fix_layers(fix: dict[str, Any]) -> tuple[str, list[str]]:
    """(repair, layers) of a :func:`edgekit.diagnose.fix.propose_fix` result (older ones: keep_float only)."""
    repair = fix.get("repair", "keep_float")
    return repair, list(fix.get(repair) or [])
