"""The individual gate checks: each reads numbers from a manifest and returns ``Check`` rows."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from edgekit.gate.config import DeviceLatency, GateConfig, LatencyRatio
from edgekit.manifest import finite as _num


@dataclasses.dataclass(frozen=True)
class Check:
    """One gate: ``measured`` compared with ``limit`` by ``op`` (``<=`` or ``>=``).

    ``measured`` is ``None`` when the manifest lacks the number; such a check fails.
    """

    name: str
    target: str
    measured: float | None
    limit: float
    passed: bool
    unit: str
    op: str = "<="
    detail: str = ""
    skipped: bool = False  # not compared (detail says why); counts as passed

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Check":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def measured_text(self) -> str:
        if self.skipped:
            return "skipped"
        return "missing" if self.measured is None else format_value(self.measured, self.unit)

    @property
    def limit_text(self) -> str:
        return f"{self.op} {format_value(self.limit, self.unit)}"

    @property
    def result(self) -> str:
        return "SKIP" if self.skipped else "PASS" if self.passed else "FAIL"

    def describe(self) -> str:
        """One line, e.g. ``tflite-int8 size 41,234 B > 40,000 B``."""
        if self.measured is None or self.skipped:
            return f"{self.target} {self.name}: {self.detail or 'not in the manifest'}"
        bad = {"<=": ">", ">=": "<"}[self.op]
        return f"{self.target} {self.name} {self.measured_text} {bad if not self.passed else self.op} " \
               f"{format_value(self.limit, self.unit)}"


def format_value(v: float, unit: str) -> str:
    """A number in its unit as people read it: ``41,234 B``, ``43.0 us`` (latencies, kept in ms), ``97.49 %``."""
    if not _num(v):
        return f"{v!r}"[:40] + (f" {unit}" if unit else "")
    if unit == "B":
        return f"{int(round(v)):,} B"
    if unit == "ms":
        return f"{1000 * v:.1f} us"
    if unit == "fraction":
        return f"{100 * v:.2f} %"
    if unit == "%":
        return f"{v:.2f} %"
    if unit == "pt":
        return f"{v:.2f} pt"
    if unit == "x":
        return f"{v:.3f}x"
    return f"{v:.4g}" + (f" {unit}" if unit else "")


def _cmp(name: str, target: str, measured: Any, limit: float, unit: str, op: str = "<=", detail: str = "") -> Check:
    if not _num(measured):
        why = "is not in the manifest" if measured is None else "in the manifest is not a finite number"
        return Check(name, target, None, limit, False, unit, op, detail or f"{name} {why}")
    m = float(measured)
    passed = m <= limit if op == "<=" else m >= limit
    return Check(name, target, m, limit, passed, unit, op, detail)


# a check gets (config, target name, this run's target entry, all validated targets, baseline entry or None)
CheckFn = Callable[[GateConfig, str, dict, dict, "dict | None"], list[Check]]


def size_checks(cfg: GateConfig, name: str, t: dict, targets: dict, base: dict | None) -> list[Check]:
    out = []
    if cfg.max_size is not None:
        out.append(_cmp("size", name, t.get("bytes"), cfg.max_size, "B"))
    if cfg.max_gzip_size is not None:
        out.append(_cmp("gzip_size", name, t.get("gzip_bytes"), cfg.max_gzip_size, "B"))
    return out


def latency_checks(cfg: GateConfig, name: str, t: dict, targets: dict, base: dict | None) -> list[Check]:
    if cfg.max_latency_ms is None:
        return []
    key = f"latency_{cfg.latency_stat}_ms"
    return [_cmp(f"latency_{cfg.latency_stat}", name, t.get(key), cfg.max_latency_ms, "ms")]


def latency_ratio_check(cfg: GateConfig, ratio: LatencyRatio, targets: dict) -> Check:
    """``ratio.target``'s latency divided by ``ratio.reference``'s, both from the same run and the
    same CPU class: int8 vs float speed differs between classes, so two targets validated on
    machines of different classes (``edgekit validate`` adds targets to a folder) are not compared
    and the check is skipped, naming both classes."""
    key = f"latency_{cfg.latency_stat}_ms"
    mine, theirs = targets[ratio.target].get(key), targets[ratio.reference].get(key)
    skip = _ratio_class_skip(ratio, targets[ratio.target].get("cpu"), targets[ratio.reference].get("cpu"))
    if skip is not None:
        return Check("latency_ratio", ratio.target, None, ratio.max_ratio, True, "x", detail=skip, skipped=True)
    value = mine / theirs if _num(mine) and _num(theirs) and theirs > 0 else None
    detail = f"{cfg.latency_stat} vs {ratio.reference}"
    if value is None:
        detail += f": {key} is missing for one of the two"
    else:
        detail += f" ({1000 * mine:.1f} us / {1000 * theirs:.1f} us)"
    return _cmp("latency_ratio", ratio.target, value, ratio.max_ratio, "x", detail=detail)


def _ratio_class_skip(ratio: LatencyRatio, mine: Any, theirs: Any) -> str | None:
    """Why ``ratio`` is not compared (its two latencies come from different CPU classes), or None.
    Neither target recording a class is a manifest from before classes were recorded, where both
    were measured in one run on one machine: compared as before."""
    has = lambda cpu: isinstance(cpu, dict) and isinstance(cpu.get("class"), str)  # noqa: E731
    if not has(mine) and not has(theirs):
        return None
    if not has(mine) or not has(theirs):
        which = ratio.target if not has(mine) else ratio.reference
        return (f"{which} records no CPU class, so the two latencies may come from different machines: "
                f"ratio vs {ratio.reference} not compared; validate both targets in one run")
    if mine["class"] == theirs["class"]:  # edgekit.devices.isa.same_cpu_class's test
        return None
    return (f"skipped: {ratio.target} was measured on {mine['class']} and {ratio.reference} on "
            f"{theirs['class']}, different CPU classes; validate both targets on one machine to compare them")


def accuracy_checks(cfg: GateConfig, name: str, t: dict, targets: dict, base: dict | None) -> list[Check]:
    out = []
    if cfg.min_accuracy is not None:
        out.append(_cmp("accuracy", name, t.get("accuracy"), cfg.min_accuracy, "fraction", ">="))
    if cfg.max_accuracy_drop is not None:
        out.append(_cmp("accuracy_drop", name, t.get("accuracy_drop_pt"), cfg.max_accuracy_drop, "pt",
                        detail="vs the float reference model"))
    if cfg.max_accuracy_drop_vs_trained is not None:
        trained, acc = t.get("trained_accuracy"), t.get("accuracy")
        drop = 100.0 * (trained - acc) if _num(trained) and _num(acc) else None
        out.append(_cmp("accuracy_drop_vs_trained", name, drop, cfg.max_accuracy_drop_vs_trained, "pt",
                        detail=f"{_pct(trained)} as trained -> {_pct(acc)}"))
    if cfg.min_agreement is not None:
        out.append(_cmp("agreement", name, t.get("agreement_pct"), cfg.min_agreement, "%", ">=",
                        detail="top-1 agreement with the reference model"))
    if cfg.max_abs_diff is not None:
        out.append(_cmp("max_abs_diff", name, t.get("max_abs_diff"), cfg.max_abs_diff, ""))
    return out


def baseline_checks(cfg: GateConfig, name: str, t: dict, targets: dict, base: dict | None) -> list[Check]:
    if base is None:
        return []
    out = []
    if cfg.max_size_growth is not None:
        new, old = t.get("bytes"), base.get("bytes")
        growth = 100.0 * (new - old) / old if _num(new) and _num(old) and old > 0 else None
        detail = f"{_bytes(old)} -> {_bytes(new)} vs baseline"
        out.append(_cmp("size_growth", name, growth, cfg.max_size_growth, "%", detail=detail))
    if cfg.max_accuracy_fall is not None:
        new, old = t.get("accuracy"), base.get("accuracy")
        fall = 100.0 * (old - new) if _num(new) and _num(old) else None
        detail = f"{_pct(old)} -> {_pct(new)} vs baseline"
        out.append(_cmp("accuracy_fall", name, fall, cfg.max_accuracy_fall, "pt", detail=detail))
    if cfg.max_latency_growth is not None:
        out.append(latency_growth_check(cfg, name, t, base))
    return out


def latency_growth_check(cfg: GateConfig, name: str, t: dict, base: dict) -> Check:
    """Latency growth against the baseline, only between runs on the same CPU class: int8 vs float
    speed differs between classes, so a baseline from another class is skipped, saying why."""
    from edgekit.devices.isa import same_cpu_class

    key = f"latency_{cfg.latency_stat}_ms"
    now, then = t.get("cpu"), base.get("cpu")
    skip = None
    if not isinstance(then, dict) or "class" not in then:
        skip = "the baseline records no CPU class (validated before edgekit recorded it): latency not compared"
    elif not isinstance(now, dict) or "class" not in now:
        skip = "this run records no CPU class: latency not compared"
    else:
        same, why = same_cpu_class(then, now)
        if not same:
            skip = f"skipped: baseline on {why}"
    if skip is not None:
        return Check("latency_growth", name, None, cfg.max_latency_growth, True, "%", detail=skip, skipped=True)
    new, old = t.get(key), base.get(key)
    growth = 100.0 * (new - old) / old if _num(new) and _num(old) and old > 0 else None
    detail = f"{cfg.latency_stat} {_ms(old)} -> {_ms(new)} vs baseline, both {now['class']}"
    return _cmp("latency_growth", name, growth, cfg.max_latency_growth, "%", detail=detail)


def device_latency_check(cfg: GateConfig, limit: DeviceLatency, targets: dict) -> Check:
    """``limit.target``'s latency as measured on ``limit.device`` (validate's ``devices`` entry)."""
    key = f"latency_{cfg.latency_stat}_ms"
    entry = (targets[limit.target].get("devices") or {}).get(limit.device) or {}
    cpu = (entry.get("facts") or {}).get("cpu") or {}
    detail = f"{cfg.latency_stat} on {limit.device}" + (f" ({cpu.get('model')}, {cpu.get('class')})" if cpu else "")
    if key not in entry:
        detail += f": {entry.get('status') or 'not measured there'}"
    return _cmp("device_latency", limit.target, entry.get(key), limit.max_ms, "ms", detail=detail)


def diagnose_checks(cfg: GateConfig, name: str, t: dict, targets: dict, base: dict | None) -> list[Check]:
    """Worst-layer SNR and the fix's recovered accuracy, on the target the diagnose stage read."""
    d = t.get("diagnose")
    if not isinstance(d, dict):
        return []
    out = []
    if cfg.min_layer_snr_db is not None:
        layers = [r for r in d.get("layers") or [] if isinstance(r, dict) and _num(r.get("snr_db"))]
        worst = min(layers, key=lambda r: r["snr_db"], default=None)
        out.append(_cmp("layer_snr", name, worst["snr_db"] if worst else None, cfg.min_layer_snr_db, "dB", ">=",
                        detail=f"worst layer: {worst['name']}" if worst else "diagnose recorded no layers"))
    if cfg.min_recovered_pt is not None:
        fix = d.get("fix") if isinstance(d.get("fix"), dict) else {}
        before, after = fix.get("before_accuracy"), fix.get("after_accuracy")
        gained = 100.0 * (after - before) if _num(before) and _num(after) else None
        out.append(_cmp("recovered", name, gained, cfg.min_recovered_pt, "pt", ">=",
                        detail=f"diagnose fix: {_pct(before)} -> {_pct(after)}" if fix else
                        "the diagnose stage ran without fix"))
    return out


CHECKS: tuple[CheckFn, ...] = (size_checks, latency_checks, accuracy_checks, baseline_checks, diagnose_checks)



def _ms(v: Any) -> str:
    return f"{1000 * v:.1f} us" if _num(v) else "?"


def _bytes(v: Any) -> str:
    return f"{int(v):,} B" if _num(v) else "?"


def _pct(v: Any) -> str:
    return f"{100 * v:.2f} %" if _num(v) else "?"
