"""``run_gates``: check a run's manifest against a ``GateConfig`` and return a ``GateReport``.

Reads only the manifest (and, for a manifest on disk, the sha256 of the files it lists);
never imports TensorFlow, so a CI gate step starts in well under a second.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

from edgekit.errors import GateFailed, InputError, UsageError
from edgekit.gate.checks import CHECKS, Check, device_latency_check, latency_ratio_check
from edgekit.gate.config import DIAGNOSE_LIMITS, GateConfig
from edgekit.manifest import FORMAT, MANIFEST, load_manifest, verify_manifest
from edgekit.registry import did_you_mean

@dataclasses.dataclass(frozen=True)
class GateReport:
    """The outcome of a gate run: one ``Check`` per limit and target."""

    checks: list[Check]
    targets: tuple[str, ...]
    manifest: str | None = None
    baseline: str | None = None
    config: GateConfig = dataclasses.field(default_factory=GateConfig)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def rows(self) -> list[dict[str, str]]:
        """Table rows: check, target, measured, limit, result (and detail)."""
        return [{"check": c.name, "target": c.target, "measured": c.measured_text, "limit": c.limit_text,
                 "result": c.result, "detail": c.detail} for c in self.checks]

    def summary(self) -> str:
        n, bad = len(self.checks), len(self.failed)
        skipped = [c for c in self.checks if c.skipped]
        if not bad:
            note = f"; {len(skipped)} skipped: " + "; ".join(c.describe() for c in skipped) if skipped else ""
            return f"All {n - len(skipped)} gates passed ({', '.join(self.targets)}){note}."
        return f"{bad} of {n} gates failed: " + "; ".join(c.describe() for c in self.failed) + "."

    def raise_if_failed(self) -> "GateReport":
        """Raise GateFailed (exit code 1) naming every failed check; return self otherwise."""
        if not self.passed:
            raise GateFailed(self.summary())
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; store it as the ``gates`` stage's metrics so the report shows it."""
        return {"passed": self.passed, "targets": list(self.targets), "manifest": self.manifest,
                "baseline": self.baseline, "checks": [c.to_dict() for c in self.checks],
                "config": self.config.to_dict()}

    def to_markdown(self) -> str:
        lines = ["| check | target | measured | limit | result |", "|---|---|---:|---:|:---:|"]
        for r in self.rows():
            mark = {"PASS": "✅ PASS", "SKIP": "⏭ SKIP"}.get(r["result"], "❌ FAIL")
            lines.append(f"| {r['check']} | {r['target']} | {r['measured']} | {r['limit']} | {mark} |")
        return "\n".join(lines)


def run_gates(
    manifest: str | os.PathLike | Mapping[str, Any],
    config: GateConfig | Mapping[str, Any],
    baseline: str | os.PathLike | Mapping[str, Any] | None = None,
    *,
    verify: bool = True,
) -> GateReport:
    """Check ``manifest`` (a path to ``manifest.json``, its folder, or the loaded dict) against ``config``.

    A manifest on disk is first verified: files it lists that are missing or whose sha256
    changed raise InputError (``verify=False`` skips this). ``baseline`` (a path or dict;
    default ``config.baseline``) is read for its numbers only, so a committed baseline
    manifest needs none of its files. Failed checks do not raise: call
    ``report.raise_if_failed()`` for that.

    Raises:
        UsageError: no limits set, an unknown target, or baseline limits without a baseline.
        InputError: a manifest that is missing, not an edgekit manifest, tampered with, or
            without a validate stage.
    """
    cfg = config if isinstance(config, GateConfig) else GateConfig.from_dict(config)
    if not cfg.has_checks:
        raise UsageError("No gate limits given: set at least one of max_size, max_gzip_size, max_latency_ms, "
                         "max_accuracy_drop, min_accuracy, min_agreement, max_abs_diff, max_latency_ratio, "
                         "max_device_latency, max_size_growth, max_accuracy_fall, max_latency_growth.")
    man, man_name = _load(manifest, verify=verify)
    validated = _validated_targets(man, man_name)
    targets = _select(cfg.targets, validated, man_name)
    for r in cfg.max_latency_ratio:
        for name in (r.target, r.reference):
            if name not in validated:
                raise _unknown(name, validated, man_name, f"max_latency_ratio {r.spec()!r}")
    for d in cfg.max_device_latency:
        if d.target not in validated:
            raise _unknown(d.target, validated, man_name, f"max_device_latency {d.spec()!r}")
        devices = list(validated[d.target].get("devices") or {})
        if d.device not in devices:
            raise UsageError(f"max_device_latency {d.spec()!r}: {d.target} was not validated on {d.device!r} in "
                             f"{man_name!r}; it was on: {', '.join(devices) or 'no device'}. Run `edgekit validate "
                             f"ARTIFACT --device {d.device}` first.{did_you_mean(d.device, devices)}")

    base_src = baseline if baseline is not None else cfg.baseline
    base_targets: dict[str, dict] | None = None
    base_name = None
    if cfg.needs_baseline and base_src is None:
        raise UsageError("max_size_growth, max_accuracy_fall and max_latency_growth compare against a baseline manifest; "
                         "give one with --baseline (or gates.baseline).")
    if base_src is not None:
        if not cfg.needs_baseline:
            raise UsageError("A baseline manifest was given but no baseline limit: add --max-size-growth, "
                             "--max-accuracy-fall and/or --max-latency-growth (gates.max_size_growth / "
                             "max_accuracy_fall / max_latency_growth).")
        base_man, base_name = _load(base_src, verify=False)
        base_targets = _validated_targets(base_man, base_name)
        for t in targets:
            if t not in base_targets:
                raise InputError(f"The baseline manifest {base_name!r} has no validated target {t!r}; it validated: "
                                 f"{', '.join(base_targets) or 'nothing'}. Compare against a baseline that "
                                 "exported the same target.")

    if cfg.max_accuracy_drop_vs_trained is not None:
        trained = trained_accuracy(man, man_name)
        validated = {n: {**e, "trained_accuracy": trained} if isinstance(e, dict) else e
                     for n, e in validated.items()}
    if any(getattr(cfg, n) is not None for n in DIAGNOSE_LIMITS):
        validated = with_diagnosis(man, man_name, validated)
    checks: list[Check] = []
    for name in targets:
        base_entry = base_targets[name] if base_targets is not None else None
        for fn in CHECKS:
            checks.extend(fn(cfg, name, validated[name], validated, base_entry))
    checks.extend(latency_ratio_check(cfg, r, validated) for r in cfg.max_latency_ratio)
    checks.extend(device_latency_check(cfg, d, validated) for d in cfg.max_device_latency)
    return GateReport(checks, tuple(targets), man_name, base_name, cfg)


def validated_targets(manifest: str | os.PathLike | Mapping[str, Any]) -> dict[str, dict]:
    """The ``stages.validate.metrics.targets`` mapping of a manifest (path or dict)."""
    man, name = _load(manifest, verify=False)
    return _validated_targets(man, name)


def with_diagnosis(man: Mapping[str, Any], name: str, validated: dict[str, dict]) -> dict[str, dict]:
    """``validated`` with the diagnose stage's metrics under ``"diagnose"`` of the target it read."""
    stages = man.get("stages") if isinstance(man.get("stages"), Mapping) else {}
    stage = stages.get("diagnose") if isinstance(stages.get("diagnose"), Mapping) else None
    metrics = stage.get("metrics") if stage is not None and isinstance(stage.get("metrics"), Mapping) else None
    if metrics is None:
        raise UsageError(f"min_layer_snr_db and min_recovered_pt read the diagnose stage; {name!r} has "
                         f"{', '.join(map(str, stages)) or 'no stages'}. Add a diagnose section to the recipe (or "
                         "run edgekit diagnose with --out into the folder you gate).")
    target = metrics.get("target", "tflite-int8")
    return {n: {**e, "diagnose": dict(metrics)} if n == target and isinstance(e, dict) else e
            for n, e in validated.items()}


def trained_accuracy(man: Mapping[str, Any], name: str) -> Any:
    """The train stage's holdout accuracy (the float model before compression)."""
    stages = man.get("stages") if isinstance(man.get("stages"), Mapping) else {}
    train = stages.get("train") if isinstance(stages.get("train"), Mapping) else None
    if train is None:
        raise UsageError(f"max_accuracy_drop_vs_trained needs a manifest with a train stage; {name!r} has "
                         f"{', '.join(map(str, stages)) or 'no stages'}. Gate the run folder's manifest.json "
                         "(edgekit run), or use --max-accuracy-drop (against the reference model).")
    metrics = train.get("metrics") if isinstance(train.get("metrics"), Mapping) else {}
    return metrics.get("test_accuracy")


# -- helpers ------------------------------------------------------------------------------
def _load(src: Any, verify: bool) -> tuple[dict, str]:
    if isinstance(src, Mapping):
        if src.get("format") != FORMAT:
            raise InputError(f"The given manifest is not an edgekit manifest (format {FORMAT!r} expected).")
        return dict(src), "(given as a dict)"
    p = Path(src)
    name = str(p)
    man = load_manifest(p)
    if verify:
        try:
            bad = verify_manifest(p)
        except (KeyError, TypeError, AttributeError) as e:
            raise InputError(f"Manifest {name!r} has a malformed artifacts list ({type(e).__name__}: {e}).") from None
        if bad:
            root = p if p.is_dir() else p.parent
            missing = [b for b in bad if not (root / b).is_file()]
            changed = [b for b in bad if b not in missing]
            what = "; ".join(filter(None, [
                f"changed since it was written (sha256 mismatch): {', '.join(changed)}" if changed else "",
                f"missing: {', '.join(missing)}" if missing else "",
            ]))
            raise InputError(f"Manifest {name!r} does not match its files ({what}). Re-run the stage that wrote "
                             "them, or restore the original files.")
    return man, name


def _validated_targets(man: Mapping[str, Any], name: str) -> dict[str, dict]:
    stages = man.get("stages")
    if not isinstance(stages, Mapping):
        raise InputError(f"Manifest {name!r} has no stages mapping; it is not a complete edgekit manifest.")
    val = stages.get("validate")
    if val is None:
        raise InputError(f"Manifest {name!r} has no validate stage, so there is nothing to gate. Run "
                         f"`edgekit validate` (or `edgekit run`) first. Stages present: {', '.join(stages) or 'none'}.")
    metrics = val.get("metrics") if isinstance(val, Mapping) else None
    targets = metrics.get("targets") if isinstance(metrics, Mapping) else None
    if not isinstance(targets, Mapping) or not all(isinstance(v, Mapping) for v in targets.values()):
        raise InputError(f"Manifest {name!r} has a malformed stages.validate.metrics.targets (a mapping of target "
                         "name to its measurements expected).")
    if not targets:
        raise InputError(f"Manifest {name!r} validated no targets; there is nothing to gate.")
    return {str(k): dict(v) for k, v in targets.items()}


def _select(wanted: tuple[str, ...], validated: dict[str, dict], name: str) -> list[str]:
    if not wanted:
        return list(validated)
    for t in wanted:
        if t not in validated:
            raise _unknown(t, validated, name, "--target")
    return list(wanted)


def _unknown(t: str, validated: Mapping[str, Any], name: str, where: str) -> UsageError:
    names = list(validated)
    return UsageError(f"Unknown target {t!r} ({where}): manifest {name!r} validated {', '.join(names)}."
                      f"{did_you_mean(t, names)}")


__all__ = ["GateReport", "run_gates", "validated_targets", "MANIFEST"]
