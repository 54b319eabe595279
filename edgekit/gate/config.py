"""``GateConfig``: the limits a CI gate checks (the recipe's ``gates`` section maps onto it).

Values are stored in canonical units: sizes in bytes, latency in milliseconds, accuracy as
a fraction, accuracy drops/falls in percentage points, agreement and growth in percent.
``from_dict`` accepts the friendlier spellings users type (``"40KB"``, ``"5%"``, ``"97%"``).
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Iterable, Mapping

from edgekit.errors import UsageError
from edgekit.registry import did_you_mean

LATENCY_STATS = ("p50", "p90")

_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000 ** 2, "mib": 1024 ** 2}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")
_NUMBER_RE = re.compile(r"^\s*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z%]*)\s*$")


@dataclasses.dataclass(frozen=True)
class LatencyRatio:
    """``target``'s latency may be at most ``max_ratio`` times ``reference``'s (same run; compared only
    when both were measured on the same CPU class, otherwise skipped, saying why)."""

    target: str
    reference: str
    max_ratio: float

    def spec(self) -> str:
        return f"{self.target}:{self.reference}={self.max_ratio:g}"


@dataclasses.dataclass(frozen=True)
class DeviceLatency:
    """``target``'s latency measured on ``device`` (a URI it was validated on) may be at most ``max_ms``."""

    target: str
    device: str
    max_ms: float

    def spec(self) -> str:
        return f"{self.target}@{self.device}={self.max_ms:g}ms"


@dataclasses.dataclass(frozen=True)
class GateConfig:
    """The limits a gate run enforces; ``None`` turns a check off.

    Attributes:
        targets: validated targets to gate (e.g. ``("tflite-int8",)``); empty means every
            target the manifest's validate stage measured.
        max_size: largest artifact in bytes.
        max_gzip_size: largest artifact after gzip -9, in bytes.
        max_latency_ms: slowest allowed batch-1 latency (``latency_stat``) in milliseconds.
        latency_stat: which latency percentile the latency checks use: ``p50`` or ``p90``.
        max_accuracy_drop: most accuracy the artifact may lose against the float reference
            model, in percentage points.
        max_accuracy_drop_vs_trained: most accuracy the artifact may lose against the model
            as trained (the train stage's holdout accuracy, before compression), in points.
        min_accuracy: lowest allowed holdout accuracy, as a fraction (0.97).
        min_agreement: lowest top-1 agreement with the reference model, in percent (99).
        max_abs_diff: largest absolute difference of any output score against the reference.
        baseline: a baseline manifest to compare against (``run_gates(baseline=)`` overrides).
        max_size_growth: most the artifact may grow against the baseline, in percent.
        max_accuracy_fall: most accuracy may fall against the baseline, in percentage points.
        max_latency_ratio: latency limits relative to another target measured in the same run;
            compared only when both were measured on the same CPU class (otherwise skipped, saying why).
        max_latency_growth: most the latency may grow against the baseline, in percent; compared
            only when both were measured on the same CPU class (otherwise skipped, saying why).
        max_device_latency: latency limits (ms) of a target measured on a device by
            ``edgekit validate --device`` (``TARGET@DEVICE=LIMIT``).
        min_layer_snr_db: lowest SNR (dB) any layer of the diagnosed target may have (the
            manifest's diagnose stage: ``edgekit diagnose`` or the recipe's diagnose section).
        min_recovered_pt: least accuracy (points) the diagnose fix must recover on that target.
    """

    targets: tuple[str, ...] = ()
    max_size: int | None = None
    max_gzip_size: int | None = None
    max_latency_ms: float | None = None
    latency_stat: str = "p50"
    max_accuracy_drop: float | None = None
    max_accuracy_drop_vs_trained: float | None = None
    min_accuracy: float | None = None
    min_agreement: float | None = None
    max_abs_diff: float | None = None
    baseline: str | None = None
    max_size_growth: float | None = None
    max_accuracy_fall: float | None = None
    max_latency_ratio: tuple[LatencyRatio, ...] = ()
    max_latency_growth: float | None = None
    max_device_latency: tuple[DeviceLatency, ...] = ()
    min_layer_snr_db: float | None = None
    min_recovered_pt: float | None = None

    def __post_init__(self) -> None:
        self._check()

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, path: str = "gates") -> "GateConfig":
        """Build a config from a mapping (a recipe's ``gates`` section or CLI options).

        Unknown keys, wrong types and out-of-range values raise UsageError naming
        ``path.key``. ``target`` (one name) is accepted as well as ``targets`` (a list).
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise UsageError(f"{path} must be a mapping of gate limits. Received: {type(data).__name__}.")
        names = [f.name for f in dataclasses.fields(cls)]
        kw: dict[str, Any] = {}
        for key, value in data.items():
            # path "--" names keys as command-line options (--max-size) in error messages
            where = f"--{str(key).replace('_', '-')}" if path == "--" else f"{path}.{key}"
            if key == "target":
                key = "targets"
            if key not in names:
                raise UsageError(f"Unknown key {where!r}. Expected one of: {', '.join(names)}."
                                 f"{did_you_mean(str(key), names)}")
            if value is None:
                continue
            try:
                kw[key] = _PARSERS[key](value, where)
            except UsageError as e:  # a value of 5,000 characters is not echoed in full
                from edgekit.recipe.strict import clip_quoted

                raise UsageError(clip_quoted(str(e))) from None
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON/YAML-able dict that ``from_dict`` reads back unchanged."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "targets":
                v = list(v)
            elif f.name == "max_latency_ratio":
                v = {f"{r.target}:{r.reference}": r.max_ratio for r in v}
            elif f.name == "max_device_latency":
                v = {f"{d.target}@{d.device}": d.max_ms for d in v}
            out[f.name] = v
        return out

    def replace(self, **changes: Any) -> "GateConfig":
        return dataclasses.replace(self, **changes)

    # -- queries -----------------------------------------------------------------------
    @property
    def has_checks(self) -> bool:
        """Whether any limit is set (a gate run without limits is a usage error)."""
        return (any(getattr(self, n) is not None for n in _LIMITS + DIAGNOSE_LIMITS) or bool(self.max_latency_ratio)
                or bool(self.max_device_latency))

    @property
    def needs_baseline(self) -> bool:
        return any(v is not None for v in (self.max_size_growth, self.max_accuracy_fall, self.max_latency_growth))

    def _check(self) -> None:
        if self.latency_stat not in LATENCY_STATS:
            raise UsageError(f"gates.latency_stat must be one of: {', '.join(LATENCY_STATS)}. "
                             f"Received: {self.latency_stat!r}.")
        for name in ("max_size", "max_gzip_size", "max_latency_ms", "max_accuracy_drop",
                     "max_accuracy_drop_vs_trained", "max_abs_diff",
                     "max_size_growth", "max_accuracy_fall", "max_latency_growth"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise UsageError(f"gates.{name} must not be negative. Received: {v!r}.")
        if self.min_accuracy is not None and not 0 <= self.min_accuracy <= 1:
            raise UsageError(f"gates.min_accuracy must be a fraction in [0, 1] (or a percent such as 97%). "
                             f"Received: {self.min_accuracy!r}.")
        if self.min_agreement is not None and not 0 <= self.min_agreement <= 100:
            raise UsageError(f"gates.min_agreement must be a percent in [0, 100]. Received: {self.min_agreement!r}.")
        for r in self.max_latency_ratio:
            if not r.max_ratio > 0:
                raise UsageError(f"gates.max_latency_ratio {r.spec()!r}: the ratio must be positive.")
            if r.target == r.reference:
                raise UsageError(f"gates.max_latency_ratio {r.spec()!r} compares a target with itself. "
                                 "Name two different validated targets: TARGET:OTHER=RATIO.")


_LIMITS = ("max_size", "max_gzip_size", "max_latency_ms", "max_accuracy_drop", "max_accuracy_drop_vs_trained",
           "min_accuracy", "min_agreement",
           "max_abs_diff", "max_size_growth", "max_accuracy_fall", "max_latency_growth")
DIAGNOSE_LIMITS = ("min_layer_snr_db", "min_recovered_pt")  # read the manifest's diagnose stage


# -- parsers for user spellings ------------------------------------------------------------
def parse_size(value: Any, where: str = "size") -> int:
    """Bytes from ``40000``, ``"40KB"`` (1000 B), ``"40KiB"`` (1024 B), ``"1.5MB"``, ``"2MiB"``."""
    if isinstance(value, bool):
        raise UsageError(f"{where} must be a size such as 40KB. Received: {value!r}.")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{where} must be a finite size such as 40KB. Received: {value!r}.")
        if value < 0:
            raise UsageError(f"{where} must not be negative. Received: {value!r}.")
        return int(value)
    m = _SIZE_RE.match(str(value))
    unit = m.group(2).lower() if m else ""
    if not m or unit not in ("",) + tuple(_SIZE_UNITS):
        raise UsageError(f"{where} must be a size: a number with unit B, KB, KiB, MB or MiB (KB = 1000 B, "
                         f"KiB = 1024 B), e.g. 40KB. Received: {value!r}.")
    size = float(m.group(1)) * _SIZE_UNITS.get(unit, 1)
    if not math.isfinite(size):
        raise UsageError(f"{where} must be a finite size such as 40KB. Received: {value!r}.")
    return int(round(size))


def _number(value: Any, where: str, units: Iterable[str], example: str) -> tuple[float, str]:
    if isinstance(value, bool):
        raise UsageError(f"{where} must be a number such as {example}. Received: {value!r}.")
    if isinstance(value, (int, float)):
        value = repr(value)
    m = _NUMBER_RE.match(str(value))
    if not m or m.group(2).lower() not in units:
        raise UsageError(f"{where} must be a number such as {example}. Received: {value!r}.")
    if not math.isfinite(float(m.group(1))):
        raise UsageError(f"{where} must be a finite number such as {example}. Received: {value!r}.")
    if float(m.group(1)) < 0:
        raise UsageError(f"{where} must not be negative. Received: {value!r}.")
    return float(m.group(1)), m.group(2).lower()


def parse_float(value: Any, where: str) -> float:
    return _number(value, where, ("",), "0.5")[0]


def parse_latency_ms(value: Any, where: str) -> float:
    """Milliseconds from ``0.05`` or ``"0.05ms"``; ``"50us"`` and ``"0.01s"`` are converted."""
    v, unit = _number(value, where, ("", "ms", "us", "s"), "0.05 (milliseconds)")
    return v * {"": 1, "ms": 1, "us": 1e-3, "s": 1e3}[unit]


def parse_points(value: Any, where: str) -> float:
    """Percentage points from ``0.5`` or ``"0.5pt"``."""
    return _number(value, where, ("", "pt", "pp"), "0.5 (percentage points)")[0]


def parse_percent(value: Any, where: str) -> float:
    """Percent from ``5`` or ``"5%"``."""
    return _number(value, where, ("", "%"), "5%")[0]


def parse_accuracy(value: Any, where: str) -> float:
    """A fraction from ``0.97``, ``"97%"`` or ``97`` (numbers above 1 are read as percent)."""
    v, unit = _number(value, where, ("", "%"), "0.97 or 97%")
    if unit == "%" or v > 1:
        v /= 100
    if not 0 <= v <= 1:
        raise UsageError(f"{where} must be an accuracy in [0, 1] or [0%, 100%]. Received: {value!r}.")
    return v


def parse_targets(value: Any, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(t, str) and t.strip() for t in items):
        raise UsageError(f"{where} must be a target name or a list of them, e.g. tflite-int8. Received: {value!r}.")
    out: list[str] = []
    for t in items:
        for part in t.split(","):
            if part.strip() and part.strip() not in out:
                out.append(part.strip())
    return tuple(out)


def parse_latency_ratio(value: Any, where: str) -> tuple[LatencyRatio, ...]:
    """``"a:b=0.8"``, a list of those, or a mapping ``{"a:b": 0.8}`` (also ``{a: {b: 0.8}}``)."""
    specs: list[tuple[str, Any]] = []
    if isinstance(value, str):
        value = [value]
    if isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(v, Mapping):
                specs += [(f"{k}:{ref}", r) for ref, r in v.items()]
            else:
                specs.append((str(k), v))
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, LatencyRatio):
                specs.append((f"{item.target}:{item.reference}", item.max_ratio))
                continue
            if not isinstance(item, str) or "=" not in item:
                raise UsageError(f"{where} entries must look like TARGET:OTHER=RATIO, e.g. tflite-int8:tflite=0.8. "
                                 f"Received: {item!r}.")
            pair, _, ratio = item.rpartition("=")
            specs.append((pair, ratio))
    else:
        raise UsageError(f"{where} must be TARGET:OTHER=RATIO, e.g. tflite-int8:tflite=0.8. Received: {value!r}.")
    out = []
    for pair, ratio in specs:
        target, sep, ref = pair.partition(":")
        if not sep or not target.strip() or not ref.strip():
            raise UsageError(f"{where} must name two targets as TARGET:OTHER=RATIO, e.g. tflite-int8:tflite=0.8. "
                             f"Received: {pair!r}.")
        r = _number(ratio, where, ("", "x"), "0.8")[0]
        out.append(LatencyRatio(target.strip(), ref.strip(), r))
    return tuple(out)


def parse_device_latency(value: Any, where: str) -> tuple[DeviceLatency, ...]:
    """``"tflite-int8@ssh://pi@rpi=150us"``, a list of those, or a mapping ``{"TARGET@DEVICE": limit}``;
    limits in milliseconds (``0.15``) or with a unit (``150us``)."""
    example = "tflite-int8@ssh://pi@raspberrypi=150us"
    if isinstance(value, str):
        value = [value]
    specs: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        specs = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, DeviceLatency):
                specs.append((f"{item.target}@{item.device}", item.max_ms))
            elif isinstance(item, str) and "=" in item:
                specs.append(tuple(item.rsplit("=", 1)))  # type: ignore[arg-type]
            else:
                raise UsageError(f"{where} entries must look like TARGET@DEVICE=LIMIT, e.g. {example}. "
                                 f"Received: {item!r}.")
    else:
        raise UsageError(f"{where} must be TARGET@DEVICE=LIMIT, e.g. {example}. Received: {value!r}.")
    out = []
    for pair, limit in specs:
        target, sep, device = pair.partition("@")  # target names have no '@'; ssh URIs may
        if not sep or not target.strip() or not device.strip():
            raise UsageError(f"{where} must name a target and a device URI as TARGET@DEVICE=LIMIT, e.g. {example}. "
                             f"Received: {pair!r}.")
        out.append(DeviceLatency(target.strip(), device.strip(), parse_latency_ms(limit, where)))
    return tuple(out)


def _parse_stat(value: Any, where: str) -> str:
    v = str(value).lower().strip()
    if v not in LATENCY_STATS:
        raise UsageError(f"{where} must be one of: {', '.join(LATENCY_STATS)}. Received: {value!r}.")
    return v


def _parse_path(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where} must be the path of a manifest.json. Received: {value!r}.")
    return value


_PARSERS = {
    "targets": parse_targets,
    "min_layer_snr_db": parse_float,
    "min_recovered_pt": parse_points,
    "max_size": parse_size,
    "max_gzip_size": parse_size,
    "max_latency_ms": parse_latency_ms,
    "latency_stat": _parse_stat,
    "max_accuracy_drop": parse_points,
    "max_accuracy_drop_vs_trained": parse_points,
    "min_accuracy": parse_accuracy,
    "min_agreement": parse_percent,
    "max_abs_diff": parse_float,
    "baseline": _parse_path,
    "max_size_growth": parse_percent,
    "max_accuracy_fall": parse_points,
    "max_latency_ratio": parse_latency_ratio,
    "max_latency_growth": parse_percent,
    "max_device_latency": parse_device_latency,
}
