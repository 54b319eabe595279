"""``export``: build several targets from one model (artifacts only; validation is a separate step)."""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from edgekit.artifacts import TEMP_PREFIX, Artifact, prepare_out_dir
from edgekit.data import Dataset
from edgekit.errors import EdgekitError, InputError, UsageError, as_os_error, first_line
from edgekit.export.base import ExportConfig, ExportContext, TargetOutput
from edgekit.export.targets import load_targets
from edgekit.interrupt import checkpoint
from edgekit.manifest import begin_stage, update_manifest
from edgekit.models.qat import is_qat
from edgekit.progress import counted
from edgekit.vocab import TFLITE_INT8


@dataclasses.dataclass
class ExportResult:
    """What ``export`` produced: per-target outputs and, from :func:`edgekit.export_and_validate`,
    the validation."""

    out_dir: Path
    config: ExportConfig
    outputs: dict[str, TargetOutput]
    validation: Any = None  # edgekit.validate.ValidationResult
    failed: dict[str, EdgekitError] = dataclasses.field(default_factory=dict)  # targets not built, and why

    def path(self, target: str) -> Path:
        """The primary (runnable) artifact of ``target``."""
        return self.out_dir / self.outputs[target].primary

    def files(self) -> list[Path]:
        return [self.out_dir / f.path for o in self.outputs.values() for f in o.files]


def resolve_targets(targets: Sequence[str] | str) -> list[str]:
    """Validated, de-duplicated target names (UsageError lists the real ones)."""
    registry = load_targets()
    names = [targets] if isinstance(targets, str) else list(targets)
    if not names:
        raise UsageError(f"No target given. Expected one or more of: {', '.join(registry.names())}.")
    out: list[str] = []
    for n in names:
        registry.get(n)
        if n not in out:
            out.append(n)
    return out


def list_targets() -> list[dict[str, str]]:
    """Every registered target with what it produces, needs and runs on."""
    return [{"target": name, "runtime": t.runtime, "needs": t.needs, "description": t.description}
            for name, t in load_targets().items()]


def check_request(targets: Sequence[str] | str, out: str | os.PathLike, force: bool,
                  dataset: Dataset | None) -> list[str]:
    """The resolved target names, after the checks that need no model: calibration data for
    int8 targets, and no existing ``out`` overwritten without ``force`` (before any heavy work)."""
    names = resolve_targets(targets)
    if dataset is None:
        registry = load_targets()
        needy = [n for n in names if registry.get(n).quantized]
        if needy:
            raise UsageError(f"Target(s) {', '.join(needy)} need calibration data: pass a dataset (--dataset).")
    out_dir = Path(out)
    if out_dir.exists():
        prepare_out_dir(out_dir, force, expect=_expected_files(names))
    return names


def check_int16(config: ExportConfig, names: Sequence[str]) -> None:
    """UsageError when ``config.int16`` has no tflite-int8 target to apply to, or ai-edge-quantizer is missing."""
    if not config.int16:
        return
    if TFLITE_INT8 not in names:
        raise UsageError(f"int16 (16-bit activations) applies to the tflite-int8 target only; add --target tflite-int8 "
                         f"or drop int16. Received: targets {', '.join(names)}.")
    from edgekit.export.int16 import require_int16

    require_int16()


def _expected_files(names: Sequence[str]) -> tuple[str, ...]:
    registry = load_targets()
    return tuple(f for n in names for f in registry.get(n).files)


def export(
    model_or_path: Any,
    dataset: Dataset | None,
    targets: Sequence[str] | str,
    out: str | os.PathLike,
    force: bool = False,
    config: ExportConfig = ExportConfig(),
    progress: Callable[[str], None] | None = None,
    then: Sequence[str] = (),
) -> ExportResult:
    """Export ``model_or_path`` (a tf_keras model, a model file or a
    :class:`~edgekit.models.ModelHandle`) to ``targets`` in ``out``; writes artifacts only.

    The dataset provides calibration images (``config.representative_samples`` from the
    training split) for int8 targets. Every target is built into a temporary folder first and
    its files moved into ``out`` once built, so nothing is half-written. A target that fails is
    recorded in ``result.failed`` and the others are still written; when none could be built,
    its error is raised. Validation on the runtimes is a separate step:
    :func:`edgekit.export_and_validate`.

    The manifest is marked incomplete before the first file moves in and written last
    (:func:`edgekit.manifest.begin_stage`); ``then``: the stages that write into ``out`` after
    this one (the validation of these files), which the mark names until they have.
    """
    say = progress or (lambda _m: None)
    registry = load_targets()
    names = check_request(targets, out, force, dataset)
    check_int16(config, names)
    out_dir = Path(out)
    handle = load_checked(model_or_path, dataset)  # a bad model creates nothing
    model, ref_path = (handle.model if handle.is_keras else None), handle.path
    check_shapes(handle, names)
    prepare_out_dir(out_dir, force, expect=_expected_files(names))
    input_shape = tuple(int(d) if d is not None else None for d in handle.input_shape)
    rep = dataset.representative(min(config.representative_samples, len(dataset.x_train))) if dataset else None
    ctx = ExportContext(model=model, config=config, representative=rep, input_shape=input_shape, progress=say,
                        handle=handle)
    outputs: dict[str, TargetOutput] = {}
    failed: dict[str, EdgekitError] = {}
    stage = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}.export.", dir=out_dir))
    try:
        for i, n in enumerate(names, 1):
            say(counted("export", i, len(names), f"{n}: exporting (target {i}/{len(names)})"))
            try:
                outputs[n] = registry.get(n).build(ctx, stage)
            except EdgekitError as e:
                failed[n] = e
            except Exception as e:  # a converter's own error: this target only (a full disk stops them all)
                if isinstance(e, MemoryError) or as_os_error(e) is not None:
                    raise
                failed[n] = InputError(f"{n} could not be built: {type(e).__name__}: {first_line(e)}")
            if n in failed:
                say(f"{n}: failed: {failed[n]}")
            checkpoint()  # a Ctrl-C that a converter swallowed stops here
        if not outputs:
            raise next(iter(failed.values()))
        begin_stage(out_dir, "export", *then)  # a kill from here on leaves the folder marked incomplete
        for o in outputs.values():  # built: move into place
            for f in o.files:
                dest = out_dir / f.path
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(stage / f.path, dest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    artifacts = []
    for o in outputs.values():
        for f in o.files:
            a = Artifact.from_file(out_dir / f.path, f.kind, out_dir).to_dict()
            a["target"] = o.target
            artifacts.append(a)
    metrics = {n: {"path": o.primary, "runtime": o.runtime, **_brief(o.info)} for n, o in outputs.items()}
    metrics.update({n: {"failed": str(e)} for n, e in failed.items()})
    all_names = list(names)
    old = _previous_export(out_dir, ref_path)
    if old:  # exports of other targets into this folder from the same model are kept
        metrics = {**{k: v for k, v in old.get("metrics", {}).items() if k not in metrics}, **metrics}
        all_names = [n for n in old.get("targets", []) if n not in names] + names
    update_manifest(
        out_dir, "export", config=config, artifacts=artifacts, dataset=dataset.info if dataset else None,
        metrics=metrics, extra={"targets": all_names, "source": ref_path, "qat": is_qat(model),
                                "source_model": source_facts(handle)},
    )
    return ExportResult(out_dir, config, outputs, failed=failed)


def source_facts(handle: Any) -> dict[str, Any]:
    """What the manifest records of the source model: format, framework, input layout and how
    it was converted (the tf_keras path, or the handle's TensorFlow graph)."""
    facts: dict[str, Any] = {"format": handle.format, "framework": handle.framework, "layout": handle.layout,
                             "input_shape": list(handle.input_shape),
                             "converted_from": "tf_keras" if handle.is_keras else "tf_graph"}
    for key in ("signature", "opset"):
        if key in handle.info:
            facts[key] = handle.info[key]
    for key in ("translation", "conversion"):  # a Keras 3 translation, an ONNX model's onnx2tf conversion
        if handle.info.get(key):
            facts[key] = {k: v for k, v in handle.info[key].items() if isinstance(v, (str, int, float, bool))}
    return facts


def check_shapes(handle: Any, names: Sequence[str]) -> None:
    """A model whose image size is not fixed cannot be exported: TFLite, the Edge TPU and TFLite
    Micro need static image shapes (the batch axis may stay free)."""
    if any(d is None for d in handle.input_shape):
        raise UsageError(f"{handle.path or 'The model'} takes images of unknown size {list(handle.input_shape)}; "
                         f"{', '.join(names)} need a fixed (H, W, C). Re-export it with a fixed image size. "
                         f"Received input shape: {list(handle.input_shape)}.")


def _previous_export(out_dir: Path, source: str | None) -> dict[str, Any] | None:
    from edgekit.errors import InputError
    from edgekit.manifest import MANIFEST, load_manifest

    if not (out_dir / MANIFEST).is_file():
        return None
    try:
        stage = load_manifest(out_dir, allow_incomplete=True).get("stages", {}).get("export")
    except InputError:
        return None
    return stage if stage and stage.get("source") == source else None


def _brief(info: dict[str, Any]) -> dict[str, Any]:
    """The JSON-friendly, compact part of a target's info for the manifest."""
    keep = {}
    for k, v in info.items():
        if k == "analysis":
            keep["edgetpu"] = {kk: v[kk] for kk in ("fully_mapped", "summary", "ops_total", "ops_mapped",
                                                     "partition", "parameter_bytes", "fits_cache")}
        elif isinstance(v, (int, float, str, bool, list, dict)) or v is None:
            keep[k] = v
    return keep


def load_checked(model_or_path: Any, dataset: Dataset | None) -> Any:
    """The model's handle (edgekit.models.load), checked against the dataset's images."""
    from edgekit.models import check_fits, load

    handle = load(model_or_path)
    if dataset is not None:
        check_fits(handle, dataset)
    return handle
