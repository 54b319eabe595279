"""``export``: build several targets from one Keras model, then validate each on its runtime."""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from edgekit.artifacts import TEMP_PREFIX, Artifact, prepare_out_dir
from edgekit.data import Dataset
from edgekit.errors import UsageError
from edgekit.export.base import ExportConfig, ExportContext, TargetOutput, load_targets
from edgekit.interrupt import checkpoint
from edgekit.manifest import update_manifest


@dataclasses.dataclass
class ExportResult:
    """What ``export`` produced: per-target outputs and (when run) the validation."""

    out_dir: Path
    config: ExportConfig
    outputs: dict[str, TargetOutput]
    validation: Any = None  # edgekit.validate.ValidationResult

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


def export(
    model_or_path: Any,
    dataset: Dataset | None,
    targets: Sequence[str] | str,
    out: str | os.PathLike,
    force: bool = False,
    config: ExportConfig = ExportConfig(),
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export ``model_or_path`` (a tf_keras model or a .keras/.h5 file) to ``targets`` in ``out``.

    The dataset provides calibration images (``config.representative_samples`` from the
    training split) for int8 targets and the holdout split for validation. Every target is
    built into a temporary folder first and moved into ``out`` only when all succeeded, so a
    failure leaves nothing half-written. With ``config.validate`` each artifact is then run
    on its runtime (see :func:`edgekit.validate.validate`).
    """
    say = progress or (lambda _m: None)
    names = resolve_targets(targets)
    registry = load_targets()
    if dataset is None:
        needy = [n for n in names if registry.get(n).quantized]
        if needy:
            raise UsageError(f"Target(s) {', '.join(needy)} need calibration data: pass a dataset (--dataset).")
        if config.validate:
            config = config.replace(validate=False)
    expect = tuple(f for n in names for f in registry.get(n).files)
    out_dir = Path(out)
    if out_dir.exists():  # refuse early, before any heavy work
        prepare_out_dir(out_dir, force, expect=expect)
    model, ref_path = _load(model_or_path, dataset)  # a bad model creates nothing
    prepare_out_dir(out_dir, force, expect=expect)
    input_shape = tuple(int(d) for d in model.input_shape[1:])
    rep = dataset.representative(min(config.representative_samples, len(dataset.x_train))) if dataset else None
    ctx = ExportContext(model=model, config=config, representative=rep, input_shape=input_shape, progress=say)
    outputs: dict[str, TargetOutput] = {}
    stage = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}.export.", dir=out_dir))
    try:
        for n in names:
            say(f"{n}: exporting")
            outputs[n] = registry.get(n).build(ctx, stage)
            checkpoint()  # a Ctrl-C that a converter swallowed stops here
        for o in outputs.values():  # all built: move into place
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
    all_names = list(names)
    old = _previous_export(out_dir, ref_path)
    if old:  # exports of other targets into this folder from the same model are kept
        metrics = {**{k: v for k, v in old.get("metrics", {}).items() if k not in metrics}, **metrics}
        all_names = [n for n in old.get("targets", []) if n not in names] + names
    update_manifest(
        out_dir, "export", config=config, artifacts=artifacts, dataset=dataset.info if dataset else None,
        metrics=metrics, extra={"targets": all_names, "source": ref_path, "qat": is_qat(model)},
    )
    result = ExportResult(out_dir, config, outputs)
    if config.validate:
        from edgekit.validate import validate

        result.validation = validate(
            {n: out_dir / o.primary for n, o in outputs.items()}, model, dataset, out_dir,
            max_diff=config.max_diff, threads=config.threads, runs=config.runs, probe=False,
            progress=say, reference_path=ref_path,
            check=False,
        )
        if result.validation.failures:
            err = result.validation.failures[0]
            err.result = result  # the CLI prints the table before the error line
            raise err
    return result


def _previous_export(out_dir: Path, source: str | None) -> dict[str, Any] | None:
    from edgekit.errors import InputError
    from edgekit.manifest import MANIFEST, load_manifest

    if not (out_dir / MANIFEST).is_file():
        return None
    try:
        stage = load_manifest(out_dir).get("stages", {}).get("export")
    except InputError:
        return None
    return stage if stage and stage.get("source") == source else None


def is_qat(model) -> bool:
    """True for a quantization-aware (tfmot) model: its forward pass fake-quantizes, so float
    artifacts match it only to quantization precision, and int8 targets convert directly."""
    return any(type(layer).__name__.startswith("Quantize") for layer in getattr(model, "layers", []))


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


def _load(model_or_path: Any, dataset: Dataset | None) -> tuple[Any, str | None]:
    from edgekit.models import load_model

    path = None
    if isinstance(model_or_path, (str, os.PathLike)):
        path = str(model_or_path)
        model = load_model(model_or_path)
    else:
        model = model_or_path
        if not hasattr(model, "input_shape") or not hasattr(model, "predict"):
            raise UsageError(f"export needs a Keras model or a model file path. Received: {type(model).__name__}.")
    if dataset is not None:
        from edgekit.train.evaluate import check_fits

        check_fits(model, dataset)
    return model, path
