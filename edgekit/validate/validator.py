"""``validate``: run artifacts on their runtimes over the holdout and compare with Keras.

Writes ``validation.json`` and ``validation.md`` into the output folder (merging with the
targets validated there before) and the ``validate`` stage of ``manifest.json``::

    metrics = {"reference": {"path", "accuracy"},
               "targets": {"<target>": {"target", "path", "runtime", "accuracy", "accuracy_drop_pt",
                                        "agreement_pct", "max_abs_diff", "mean_abs_diff",
                                        "latency_p50_ms", "latency_p90_ms", "threads", "runs",
                                        "bytes", "gzip_bytes", "sha256", "cpu": {model, class, features, ...},
                                        "devices": {"<uri>": {same metrics, measured on the device,
                                                              "facts": {machine, python, cpu ...}}}}}}

``cpu`` is the host's CPU class (:func:`edgekit.devices.isa.cpu_class`): latency depends on it.
With ``config.devices`` each artifact also runs on every device (:mod:`edgekit.validate.device`).

Float targets must match Keras on every sample (``max_abs_diff <= max_diff`` and 100 %
top-1 agreement); reduced-precision targets must reach their agreement floor
(:data:`edgekit.validate.config.DEFAULT_MIN_AGREEMENT`, or ``min_agreement``); a NaN or inf
output fails any target. A miss raises :class:`~edgekit.errors.ValidationError` after the
results are written.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np

from edgekit.artifacts import Artifact, read_json, write_json, write_text
from edgekit.data import Dataset
from edgekit.errors import EdgekitError, InputError, OutputExistsError, UsageError, ValidationError
from edgekit.interrupt import checkpoint
from edgekit.manifest import MANIFEST, begin_stage, load_manifest, update_manifest
from edgekit.progress import counted
from edgekit.validate.config import ValidateConfig, agreement_floor
from edgekit.validate.metrics import accuracy, compare, status_of, tolerance_failure
from edgekit.vocab import TFLITE_MICRO

KINDS = {".tflite": "tflite", ".onnx": "onnx"}


@dataclasses.dataclass
class ValidationResult:
    """Reference accuracy and per-target metrics; ``failures`` lists tolerance misses, ``errors``
    the targets whose artifact could not run (target -> error)."""

    out_dir: Path
    reference: dict[str, Any]
    targets: dict[str, dict[str, Any]]
    failures: list[ValidationError] = dataclasses.field(default_factory=list)
    errors: dict[str, EdgekitError] = dataclasses.field(default_factory=dict)

    def metrics(self) -> dict[str, Any]:
        return {"reference": self.reference, "targets": self.targets}

    def rows(self) -> list[dict[str, Any]]:
        return [_row(m) for m in self.targets.values()]

    def to_markdown(self) -> str:
        return to_markdown(self.reference, self.targets)


def _row(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "target": m["target"], "runtime": m["runtime"], "accuracy": f"{m['accuracy']:.4f}",
        "drop (pt)": f"{m['accuracy_drop_pt']:+.2f}", "agreement": f"{m['agreement_pct']:.2f}%",
        "max |diff|": f"{m['max_abs_diff']:.2e}", "p50 (us)": f"{m['latency_p50_ms'] * 1e3:.1f}",
        "p90 (us)": f"{m['latency_p90_ms'] * 1e3:.1f}", "threads": m["threads"], "size": f"{m['bytes']:,}",
        "gzip": f"{m['gzip_bytes']:,}", "status": m.get("status", "ok"),
    }


def to_markdown(reference: dict[str, Any], targets: dict[str, dict[str, Any]]) -> str:
    from edgekit.devices.isa import describe_cpu
    from edgekit.validate.device import device_rows

    rows = [_row(m) for m in targets.values()]
    lines = ["# Validation", "",
             f"Reference ({reference.get('runtime', 'Keras')}) `{reference.get('path')}`: accuracy {reference['accuracy']:.4f} on "
             f"{reference.get('samples', '?')} holdout images ({reference.get('dataset', '')}).", ""]
    if rows:
        cols = list(rows[0])
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    cpus = list(dict.fromkeys(describe_cpu(m["cpu"], m.get("threads")) for m in targets.values() if m.get("cpu")))
    lines += ["", "Latency: batch 1, after warm-up, input already in the model's dtype; "
              "drop = reference accuracy - artifact accuracy in percentage points."]
    lines += [f"Host latency measured on: {c}." for c in cpus]
    lines += [f"{m['target']} latency: {m['latency_note']}." for m in targets.values() if m.get("latency_note")]
    drows = device_rows(targets)
    if drows:
        cols = list(dict.fromkeys(c for r in drows for c in r))
        lines += ["", "## On devices", "", "Same holdout and reference; latency measured on the device.", "",
                  "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in drows]
    return "\n".join(lines + [""])


def infer_target(path: Path) -> str:
    """The export target an artifact came from: its manifest entry, else its contents."""
    for folder in (path.parent, path.parent.parent):
        man = folder / MANIFEST
        if man.is_file():
            try:
                entries = load_manifest(man, allow_incomplete=True).get("artifacts", [])
            except InputError:
                continue
            rel = os.path.relpath(path.resolve(), folder.resolve())
            for a in entries:
                if a.get("path") == rel and a.get("target"):
                    return a["target"]
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        import onnx

        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception:
            raise InputError(f"{str(path)!r} is not a valid ONNX model (it does not parse).") from None
        return "onnx-int8" if any(n.op_type in ("QuantizeLinear", "QLinearConv") for n in proto.graph.node) else "onnx"
    if suffix == ".tflite":
        from edgekit.formats.tflite_flatbuffer import read_tflite

        g = read_tflite(path)
        consts = g.dtypes(constant=True)
        if g.input_tensors[0].dtype in ("int8", "uint8"):
            return "tflite-int4" if "int4" in consts else "tflite-int8"
        if "float16" in consts:
            return "tflite-fp16"
        if "int8" in consts:
            return "tflite-dynamic"
        return "tflite"
    raise UsageError(
        f"Cannot tell the target of {str(path)!r}: expected a .tflite or .onnx file, or TARGET=PATH "
        "(e.g. micro=out/micro/model_int8.tflite)."
    )


def parse_artifacts(artifacts: Iterable[str | Path] | Mapping[str, str | Path]) -> dict[str, Path]:
    """``{target: path}`` from paths, ``TARGET=PATH`` strings or a mapping."""
    from edgekit.export.targets import load_targets

    targets = load_targets()
    items: list[tuple[str | None, Path]] = []
    if isinstance(artifacts, Mapping):
        items = [(t, Path(p)) for t, p in artifacts.items()]
    else:
        for a in artifacts:
            s = str(a)
            if "=" in s and s.split("=", 1)[0] in targets.names():
                t, p = s.split("=", 1)
                items.append((t, Path(p)))
            elif "=" in s and not Path(s).exists():
                t = s.split("=", 1)[0]
                targets.get(t)  # raises with the valid names
            else:
                items.append((None, Path(s)))
    if not items:
        raise UsageError("No artifacts to validate. Pass one or more .tflite/.onnx files.")
    out: dict[str, Path] = {}
    for t, p in items:
        if not p.is_file():
            raise InputError(f"Artifact {str(p)!r} does not exist.")
        name = t or infer_target(p)
        targets.get(name)
        if name in out:
            raise UsageError(f"Target {name!r} is given twice ({out[name]} and {p}). Use TARGET=PATH to name them.")
        out[name] = p
    return out


def validate(
    artifacts: Iterable[str | Path] | Mapping[str, str | Path],
    reference: Any,
    dataset: Dataset,
    out: str | Path | None = None,
    *,
    config: ValidateConfig | None = None,
    reference_probs: np.ndarray | None = None,
    reference_path: str | None = None,
    exact: Mapping[str, bool] | None = None,
    progress: Callable[[str], None] | None = None,
    check: bool = True,
    force: bool = False,
    **settings: Any,
) -> ValidationResult:
    """Validate artifacts against the ``reference`` model (object, path or
    :class:`~edgekit.models.ModelHandle`) on ``dataset``'s holdout; with ``config.devices``,
    also on each device. ``reference=None`` (only with devices and one artifact): the
    reference outputs are the artifact's own on this host, so the device entry says how
    far the device is from the host.

    ``artifacts``: paths (target inferred from the manifest beside them or the file itself),
    ``TARGET=PATH`` strings, or a ``{target: path}`` mapping. ``out``: where validation.json,
    validation.md and the manifest go (default: the first artifact's folder). ``config``: a
    :class:`ValidateConfig` (max_diff, threads, runs, probe); ``settings`` override single
    fields of it (``max_diff=1e-5``). ``check``: raise ValidationError when a float target
    misses its tolerance. ``exact``: per-target override of whether the float-parity tolerance
    applies (turned off for the float targets of a quantization-aware model, whose forward
    pass fake-quantizes). The reference outputs come from the model's own framework
    (``handle.predict``). An existing ``validation.json`` in ``out`` is rewritten (merged with
    its other targets) only with ``force``; without it OutputExistsError, before any work.
    """
    from edgekit.export.targets import load_targets
    from edgekit.models import check_fits, load
    from edgekit.models.qat import is_qat
    from edgekit.runtimes import make_runner
    from edgekit.devices.isa import cpu_summary, host_cpu
    from edgekit.validate.device import check_device_targets, validate_on_devices
    from edgekit.validate.safety import safe_check

    say = progress or (lambda _m: None)
    cfg = ValidateConfig.of(config, **settings)
    max_diff = cfg.max_diff
    registry = load_targets()
    items = parse_artifacts(artifacts)
    if cfg.devices:
        check_device_targets({n: registry.get(n).runtime for n in items})
    if reference is None and not (cfg.devices and len(items) == 1):
        raise UsageError("Give the reference model the artifacts came from (--reference); only one artifact "
                         f"validated on a device may go without it. Received: {len(items)} artifact(s).")
    for name, p in items.items():  # every file is checked before any work starts
        safe_check(p, registry.get(name).runtime, probe=cfg.probe)
    out_dir = Path(out) if out is not None else next(iter(items.values())).parent
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {str(out_dir)!r} is a file, not a folder.")
    check_validation_out(out_dir, force)
    x, y = dataset.x_test, dataset.y_test
    host_ref = reference is None
    if host_ref:  # the artifact on this host is the reference of the device run
        (name0, path0), = items.items()
        runtime0 = registry.get(name0).runtime
        ref_path = str(path0)
        if reference_probs is None:
            say(f"{name0}: predicting {len(x)} holdout images on this host ({runtime0}) as the reference")
            with _runtime_errors(path0, runtime0):
                reference_probs = make_runner(runtime0, path0, cfg.threads).predict(x)
        # float targets keep their tolerance on the device; int8 kernels may round differently there
    else:
        handle = load(reference)
        check_fits(handle, dataset)
        ref_path = handle.path or reference_path
        if exact is None and is_qat(handle.model):  # fake-quantized reference: float parity is not expected
            exact = {n: False for n in items}
        if reference_probs is None:
            say(f"{'keras' if handle.is_keras else handle.framework}: predicting {len(x)} holdout images")
            reference_probs = handle.predict(x)
    ref = {"path": ref_path, "accuracy": accuracy(reference_probs, y), "samples": int(len(y)),
           "dataset": dataset.info.spec}
    if host_ref:
        ref["runtime"] = f"{runtime0} on this host"
    if ref_path and Path(ref_path).is_file():
        from edgekit.artifacts import sha256_file

        ref["sha256"] = sha256_file(ref_path)
    results: dict[str, dict[str, Any]] = {}
    failures: list[ValidationError] = []
    errors: dict[str, EdgekitError] = {}
    cpu = cpu_summary(host_cpu())
    for i, (name, p) in enumerate(items.items(), 1):
        checkpoint()  # a Ctrl-C swallowed by a runtime stops here
        spec = registry.get(name)
        is_exact = spec.exact if exact is None or name not in exact else bool(exact[name])
        say(counted("validate", i, len(items), f"{name}: running {p.name} on {spec.runtime} (target {i}/{len(items)})"))
        try:  # an artifact that cannot run fails alone: the others are still measured
            runner, probs, lat = _run(p, spec.runtime, x, cfg, reference_probs.shape, make_runner)
        except EdgekitError as e:
            errors[name] = e
            say(f"{name}: failed: {e}")
            continue
        m = compare(reference_probs, probs, y)
        art = Artifact.from_file(p, KINDS.get(p.suffix, "file"))
        rel = os.path.relpath(p.resolve(), out_dir.resolve())
        entry = {
            "target": name, "path": rel, "runtime": spec.runtime, **m,
            "latency_p50_ms": lat["p50_ms"], "latency_p90_ms": lat["p90_ms"], "threads": int(lat.get("threads", 1)),
            "runs": lat["runs"], "bytes": art.bytes, "gzip_bytes": art.gzip_bytes, "sha256": art.sha256,
            "exact": is_exact, "max_diff_limit": max_diff if is_exact else None, "cpu": cpu,
        }
        if spec.runtime == TFLITE_MICRO:
            entry["arena_bytes"] = int(getattr(runner, "arena_size", 0))
            entry["latency_note"] = "host emulation: TFLM reference kernels on this CPU; not board latency"
        if not is_exact:
            entry["min_agreement"] = agreement_floor(name, cfg.min_agreement)
        fail = tolerance_failure(name, m, is_exact, max_diff, cfg.min_agreement)
        entry["status"] = status_of(fail)
        if fail is not None:
            failures.append(fail)
        results[name] = entry
        say(f"{name}: accuracy {m['accuracy']:.4f} (drop {m['accuracy_drop_pt']:+.2f} pt), agreement "
            f"{m['agreement_pct']:.2f}%, max|diff| {m['max_abs_diff']:.2e}, p50 {lat['p50_ms'] * 1e3:.1f} us")
    if not results:
        raise next(iter(errors.values()))
    items = {n: p for n, p in items.items() if n in results}
    if cfg.devices:  # a device that fails raises here, before anything is written
        on_devices = validate_on_devices({n: (p, registry.get(n).runtime) for n, p in items.items()}, x, y,
                                         reference_probs, cfg, say, {n: results[n]["exact"] for n in items})
        for name, per_device in on_devices.items():
            results[name]["devices"] = per_device
            failures += [f for d in per_device.values() if (f := d.pop("_failure", None)) is not None]
    settings = {"max_diff": max_diff, "threads": cfg.threads, "runs": cfg.runs}
    if cfg.min_agreement is not None:
        settings["min_agreement"] = cfg.min_agreement
    if cfg.devices:
        settings["devices"] = list(cfg.devices)
    result = _write(out_dir, ref, results, dataset, settings, items)
    result.failures, result.errors = failures, errors
    if check and (errors or failures):
        raise next(iter(errors.values())) if errors else failures[0]
    return result


def _run(path: Path, runtime: str, x: np.ndarray, cfg: ValidateConfig, want: tuple[int, ...],
         make_runner: Callable[..., Any]) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """The artifact's runner, its outputs on ``x`` and its batch-1 latency; InputError when it
    cannot run or its outputs are not of the reference's shape ``want``."""
    with _runtime_errors(path, runtime):
        runner = make_runner(runtime, path, cfg.threads, isolated=cfg.probe)  # untrusted: in a child
        probs = runner.predict(x)
    if probs.shape != want:
        raise InputError(f"{str(path)!r} gives outputs of shape {probs.shape[1:]} per image on {runtime}, the "
                         f"reference model {want[1:]}: it is not an export of that model.")
    with _runtime_errors(path, runtime):
        lat = runner.latency(x[:1], runs=cfg.runs if runtime != TFLITE_MICRO else min(cfg.runs, 30))
    return runner, probs, lat


@contextlib.contextmanager
def _runtime_errors(path: Path, runtime: str) -> Iterator[None]:
    """A runtime that loaded the file but fails on the dataset's images: one InputError line."""
    try:
        yield
    except EdgekitError:
        raise
    except Exception as e:  # onnxruntime's, LiteRT's and numpy's own exception types
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = " ".join(lines)[:240] if lines else type(e).__name__
        raise InputError(f"{str(path)!r} cannot run on {runtime} with the dataset's images: {detail}") from None


def check_validation_out(out_dir: Path, force: bool) -> None:
    """OutputExistsError when ``out_dir`` holds a validation.json and ``force`` is false."""
    if not force and (out_dir / "validation.json").exists():
        raise OutputExistsError(f"{str(out_dir)!r} already holds validation.json. Use --force to validate again "
                                "into it (other targets' results are kept), or choose another --out.")


def _write(out_dir: Path, ref: dict[str, Any], results: dict[str, dict[str, Any]], dataset: Dataset,
           config: dict[str, Any], items: dict[str, Path]) -> ValidationResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    begin_stage(out_dir, "validate")  # the report files and the manifest change as a set
    vpath = out_dir / "validation.json"
    merged: dict[str, dict[str, Any]] = {}
    if vpath.is_file():
        try:
            old = read_json(vpath)
            same_model = old.get("reference", {}).get("sha256") == ref.get("sha256") and (
                ref.get("sha256") is not None or old.get("reference", {}).get("path") == ref["path"])
            if same_model and old.get("dataset_sha256") == dataset.info.sha256:
                merged = dict(old.get("targets", {}))
        except (OSError, ValueError, AttributeError):
            merged = {}
    for name, entry in results.items():  # devices measured before for the same file are kept
        old_devices = merged.get(name, {}).get("devices") if merged.get(name, {}).get("sha256") == entry["sha256"] else None
        if old_devices:
            entry["devices"] = {**old_devices, **entry.get("devices", {})}
    merged.update(results)  # results of another reference model or dataset are not mixed in
    write_json(vpath, {"format": "edgekit-validation/1", "reference": ref, "dataset": dataset.info.spec,
                       "dataset_sha256": dataset.info.sha256, "targets": merged})
    write_text(out_dir / "validation.md", to_markdown(ref, merged))
    listed = set()
    if (out_dir / MANIFEST).is_file():
        listed = {a["path"] for a in load_manifest(out_dir, allow_incomplete=True).get("artifacts", [])}
    new_artifacts = []
    for name, p in items.items():
        rel = os.path.relpath(p.resolve(), out_dir.resolve())
        if rel not in listed and not rel.startswith(".."):
            a = Artifact.from_file(p, KINDS.get(p.suffix, "file"), out_dir).to_dict()
            a["target"] = name
            new_artifacts.append(a)
    update_manifest(out_dir, "validate", config=config, metrics={"reference": ref, "targets": merged},
                    artifacts=new_artifacts, dataset=dataset.info)
    return ValidationResult(out_dir, ref, merged)
