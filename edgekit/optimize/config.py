"""OptimizeConfig: the constraints, budget and search settings of ``edgekit optimize``, frozen,
validated, to/from dict (the recipe's ``optimize:`` section parses into it)."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from edgekit import vocab
from edgekit.errors import UsageError
from edgekit.registry import did_you_mean, reject_unknown_keys

SUPPORTED_TARGETS = (vocab.TFLITE_INT8,)
AUTO_MARGIN_Z = 1.645  # ``accuracy_margin: auto``: the one-sided 95% bound of the paired drop, in standard errors


@dataclasses.dataclass(frozen=True)
class OptimizeConfig:
    """What ``optimize`` searches for.

    Constraints: ``max_accuracy_drop`` (points, the artifact on the validation split against the
    input model's own accuracy there), ``max_size`` (raw bytes of the artifact, ``"12KB"`` accepted),
    ``max_latency_us`` (LiteRT, batch 1, 1 thread, median). ``accuracy_margin`` (points) is added to
    every candidate's validation drop before it is compared with ``max_accuracy_drop``: ``"auto"`` is
    the one-sided 95% bound of that paired drop, 1.645 standard errors of ``100 * sqrt(d) / n`` for
    ``d`` of the ``n`` validation images whose top-1 differs from the input model's (McNemar), so a
    winner picked among many candidates near the limit still holds on images the search never saw;
    ``0`` turns it off. ``size_tolerance``: the winner is the smallest artifact (raw bytes, what is
    flashed); candidates within this fraction of it count as equally small, and among them the
    smaller gzip'd file (what is downloaded) wins. ``budget_minutes`` bounds the whole
    search (the baseline and sensitivity included); a candidate starts only when the time left
    fits one (estimated from those measured so far).

    Search space: ``downsample`` (first, the stem at twice its stride: the model computes at half
    resolution, kept when it holds the limits; only models whose features end in global pooling),
    ``channel_levels`` (fractions of filters/units removed per layer, tried sensitivity-first), ``prune_levels`` (sparsity) with ``cluster_levels`` (shared values), and
    ``quantize_modes`` (``qat``: 8-bit fake-quant fine-tune; ``ptq``: quantized at export only).
    The fine-tune epochs of each compress stage a candidate runs are ``*_epochs``; ``max_tune`` caps
    how long the leftover time may make them (near misses are re-run with every fine-tune x2, x4, ...
    up to this multiple; 1: never).
    """

    target: str = vocab.TFLITE_INT8
    max_accuracy_drop: float = 0.5
    max_size: int | str | None = None  # bytes; "12KB" is parsed to 12000
    max_latency_us: float | None = None
    accuracy_margin: float | str = "auto"
    size_tolerance: float = 0.05
    budget_minutes: float = 20.0
    seed: int = 0
    downsample: bool = True
    channel_levels: tuple[float, ...] = (0.25, 0.5, 0.75, 0.875)
    prune_levels: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9)
    cluster_levels: tuple[int, ...] = (32, 32, 16, 8)
    quantize_modes: tuple[str, ...] = ("qat", "ptq")
    channels_epochs: int = 8
    prune_epochs: int = 4
    cluster_epochs: int = 2
    qat_epochs: int = 2
    max_tune: int = 16
    batch_size: int = 64
    latency_runs: int = 100
    representative_samples: int = 300

    def __post_init__(self) -> None:
        known = list(vocab.TARGET_NAMES)
        if self.target not in known:
            raise UsageError(f"Unknown target {self.target!r}. Expected one of: {', '.join(SUPPORTED_TARGETS)} "
                             f"(optimize searches for these).{did_you_mean(str(self.target), known)} Received: {self.target!r}.")
        if self.target not in SUPPORTED_TARGETS:
            raise UsageError(f"optimize cannot search for target {self.target!r} yet. Expected one of: "
                             f"{', '.join(SUPPORTED_TARGETS)}. Received: {self.target}.")
        if self.max_size is not None:
            from edgekit.gate.config import parse_size

            object.__setattr__(self, "max_size", parse_size(self.max_size, "max_size"))
            if self.max_size <= 0:
                raise UsageError(f"max_size must be a positive size such as 12KB. Received: {self.max_size}.")
        _number("max_accuracy_drop", self.max_accuracy_drop, 0.0, allow_zero=True)
        _number("budget_minutes", self.budget_minutes, 0.0)
        _number("size_tolerance", self.size_tolerance, 0.0, allow_zero=True)
        if self.accuracy_margin != "auto":
            _number("accuracy_margin", self.accuracy_margin, 0.0, allow_zero=True, also="or 'auto'")
        if self.max_latency_us is not None:
            _number("max_latency_us", self.max_latency_us, 0.0)
        for name, kind, lo, hi in (("channel_levels", float, 0.0, 1.0), ("prune_levels", float, 0.0, 1.0),
                                   ("cluster_levels", int, 2, 257)):
            values = tuple(getattr(self, name) or ())
            object.__setattr__(self, name, values)
            if not values or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not lo < v < hi
                                 or (kind is int and not isinstance(v, int)) for v in values):
                raise UsageError(f"{name} must be a non-empty list of values in ({lo:g}, {hi:g}). Received: "
                                 f"{list(values)!r}.")
        object.__setattr__(self, "quantize_modes", tuple(self.quantize_modes or ()))
        bad = [m for m in self.quantize_modes if m not in ("qat", "ptq")]
        if not self.quantize_modes or bad:
            raise UsageError(f"quantize_modes must be some of qat, ptq. Received: {list(self.quantize_modes)!r}.")
        for name in ("channels_epochs", "prune_epochs", "cluster_epochs", "qat_epochs", "max_tune", "batch_size",
                     "latency_runs", "representative_samples"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise UsageError(f"{name} must be a positive integer. Received: {v!r}.")
        if not isinstance(self.downsample, bool):
            raise UsageError(f"downsample must be true or false. Received: {self.downsample!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise UsageError(f"seed must be an integer. Received: {self.seed!r}.")

    def margin_pt(self, discordant: int, samples: int) -> float:
        """The points added to a candidate's validation drop (see ``accuracy_margin``)."""
        if self.accuracy_margin == "auto":
            return AUTO_MARGIN_Z * 100.0 * math.sqrt(discordant) / samples if samples else 0.0
        return float(self.accuracy_margin)

    @property
    def budget_seconds(self) -> float:
        return float(self.budget_minutes) * 60.0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "OptimizeConfig":
        reject_unknown_keys("optimize", d, [f.name for f in dataclasses.fields(cls)])
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def replace(self, **changes: Any) -> "OptimizeConfig":
        return dataclasses.replace(self, **changes)


def _number(name: str, v: Any, lo: float, allow_zero: bool = False, also: str = "") -> None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (
        v >= lo if allow_zero else v > lo)
    if not ok:
        raise UsageError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} number"
                         f"{' ' + also if also else ''}. Received: {v!r}.")
