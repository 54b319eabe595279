"""``diagnose``: which Keras layer costs an int8 artifact its accuracy, and which to keep in float."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekit.data import Dataset
from edgekit.diagnose.layers import LayerError, layer_errors
from edgekit.errors import UsageError

QUANTIZED = {"int8", "uint8", "int16"}
REPAIRS = ("keep_float", "int16")  # how propose_fix repairs a layer: float32 ops, or 16-bit activations


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

    @property
    def drop_pt(self) -> float:
        return 100 * (self.float_accuracy - self.artifact_accuracy)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "layers"}
        return {**d, "drop_pt": self.drop_pt, "layers": [r.to_dict() for r in self.layers]}


def _int8(model: Any, rep: np.ndarray, keep_float: tuple[str, ...] = (), int16: tuple[str, ...] = ()) -> bytes:
    from edgekit.export.convert import to_tflite

    return to_tflite(model, "int8", rep, keep_float=keep_float, int16=int16)


def _accuracy(data: bytes, x: np.ndarray, y: np.ndarray) -> float:
    from edgekit.runtimes.litert import LiteRTRunner
    from edgekit.validate.metrics import accuracy

    return accuracy(LiteRTRunner(data).predict(x), y)


def check_artifact(data: bytes, path: str) -> Any:
    """The parsed flatbuffer; UsageError for a float artifact (nothing to diagnose)."""
    from edgekit.export.flatbuffer import read_tflite

    graph = read_tflite(data, "artifact")
    if not graph.dtypes(constant=False) & QUANTIZED:
        raise UsageError(f"{path} has only float activations: nothing to diagnose (diagnose compares a quantized "
                         f"artifact, e.g. tflite-int8, with its float model). Received: {path}.")
    return graph


def _check_export_of(model: Any, graph: Any, groups: list, path: str) -> None:
    """UsageError (one line) when ``graph`` is not a conversion of ``model``."""
    have = [int(d) for d in graph.input_tensors[0].shape[1:]]
    want = [int(d) for d in model.input_shape[1:]]
    outputs = {t.name for t in graph.output_tensors}
    if have != want or not any(g.tensor not in outputs for g in groups):
        raise UsageError(f"{path} is not an export of this model: its input is {have} (the model's {want}) and "
                         f"{sum(g.tensor not in outputs for g in groups)} of its tensors name the model's layers. "
                         f"Received: {path}.")


def diagnose(model_or_path: Any, artifact: str | Path, dataset: Dataset, *, samples: int = 500,
             leave_one_out: bool = True, representative_samples: int = 300,
             progress: Callable[[str], None] | None = None) -> DiagnoseResult:
    """Per-layer error of the quantized .tflite ``artifact`` against its float Keras model on
    ``samples`` holdout images of ``dataset``; with ``leave_one_out``, the accuracy each layer
    group recovers when it alone stays float (tflite-int8 re-exported with it in
    ``keep_float``, measured in LiteRT against the same re-export without it)."""
    from edgekit.export.layermap import groups_of_graph
    from edgekit.models import check_fits, load
    from edgekit.validate.metrics import accuracy
    from edgekit.validate.safety import safe_check

    say = progress or (lambda _m: None)
    path = str(artifact)
    if Path(path).suffix.lower() != ".tflite":
        raise UsageError(f"diagnose supports .tflite artifacts for now (onnx-int8 is not covered yet). "
                         f"Received: {path}.")
    safe_check(path, "litert")  # untrusted file: parsed, then run once in a child process
    data = Path(path).read_bytes()
    graph = check_artifact(data, path)
    handle = load(model_or_path)
    model = handle.keras_model("diagnose")
    check_fits(handle, dataset)
    groups = groups_of_graph(model, graph)
    _check_export_of(model, graph, groups, path)
    x, y = dataset.x_test[:samples], dataset.y_test[:samples]
    rows, probs = layer_errors(model, data, groups, x, say)
    float_acc = accuracy(handle.predict(x), y)
    result = DiagnoseResult(path, int(len(x)), float_acc, accuracy(probs, y), None, rows)
    if leave_one_out:
        rep = dataset.representative(min(representative_samples, len(dataset.x_train)))
        say("tflite-int8: re-exported as the leave-one-out baseline")
        base = _accuracy(_int8(model, rep), x, y)
        result.reexport_accuracy = base
        for g, r in zip(groups, rows):
            say(f"leave-one-out: {g.name} in float")
            r.loo_accuracy = _accuracy(_int8(model, rep, (g.output_layer,)), x, y)
            r.recovered_pt = 100 * (r.loo_accuracy - base)
    result.layers = sorted(rows, key=lambda r: -r.nsr_added)
    return result


def propose_fix(model_or_path: Any, result: DiagnoseResult, dataset: Dataset, *, max_drop_pt: float = 0.5,
                representative_samples: int = 300, repair: str = "keep_float",
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The smallest greedy set of layers to repair: add the group that recovered the most
    (leave-one-out, in float) until the drop against float is within ``max_drop_pt``.
    ``repair``: ``keep_float`` (those layers' ops in float32) or ``int16`` (16-bit activations,
    8-bit weights: ai-edge-quantizer); the result names the set under that key."""
    from edgekit.models import load

    if repair not in REPAIRS:
        from edgekit.registry import unknown_name

        raise unknown_name("repair", repair, list(REPAIRS))
    if repair == "int16":
        from edgekit.export.int16 import require_quantizer

        require_quantizer()
    say = progress or (lambda _m: None)
    model = load(model_or_path).keras_model("diagnose")
    x, y = dataset.x_test[: result.samples], dataset.y_test[: result.samples]
    rep = dataset.representative(min(representative_samples, len(dataset.x_train)))
    base = result.reexport_accuracy if result.reexport_accuracy is not None else _accuracy(_int8(model, rep), x, y)
    order = sorted((r for r in result.layers if (r.recovered_pt or 0) > 0), key=lambda r: -(r.recovered_pt or 0))
    keep: list[str] = []
    acc = base
    steps = [{repair: [], "accuracy": base}]
    for r in order:
        if 100 * (result.float_accuracy - acc) <= max_drop_pt:
            break
        keep.append(r.layers[-1])
        say(f"fix: {', '.join(keep)} " + ("in float" if repair == "keep_float" else "at 16-bit activations"))
        acc = _accuracy(_int8(model, rep, **{repair: tuple(keep)}), x, y)
        steps.append({repair: list(keep), "accuracy": acc})
    return {"repair": repair, "keep_float": keep if repair == "keep_float" else [],
            "int16": keep if repair == "int16" else [], "max_drop_pt": max_drop_pt, "before_accuracy": base,
            "after_accuracy": acc, "float_accuracy": result.float_accuracy,
            "within": 100 * (result.float_accuracy - acc) <= max_drop_pt, "steps": steps}


def fix_layers(fix: dict[str, Any]) -> tuple[str, list[str]]:
    """(repair, layers) of a :func:`propose_fix` result (older ones: keep_float only)."""
    repair = fix.get("repair", "keep_float")
    return repair, list(fix.get(repair) or [])
