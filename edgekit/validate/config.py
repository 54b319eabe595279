"""ValidateConfig: how artifacts are checked on their runtimes (one place for the settings
and their checks; export, the recipe's validate section and the CLI build on it)."""
from __future__ import annotations

import dataclasses
from typing import Any

from edgekit.configs import FrozenConfig
from edgekit.errors import UsageError
from edgekit.registry import reject_unknown_keys


# Lowest top-1 agreement (%) with the source model each reduced-precision target must reach by
# default (float targets: 100 % and max_diff). Set from benchmarks/results: legitimate models agree
# 94.4-100 % at int8 (onnx-int8 of EfficientNet-B0 the lowest), 96.1 % at int4 on the weakly trained
# test fixture, >= 99.8 % at fp16/dynamic; a broken quantization agrees about 1/classes.
DEFAULT_MIN_AGREEMENT: dict[str, float] = {
    "tflite-fp16": 98.0, "tflite-dynamic": 97.0,
    "tflite-int8": 90.0, "edgetpu": 90.0, "micro": 90.0, "onnx-int8": 90.0,
    "tflite-int4": 85.0,
}
FALLBACK_MIN_AGREEMENT = 90.0  # a reduced-precision target not listed above


def agreement_floor(target: str, min_agreement: float | None = None) -> float:
    """The agreement floor (%) of ``target`` (``name`` or ``name@device``): ``min_agreement`` when
    set, else its default."""
    if min_agreement is not None:
        return float(min_agreement)
    return DEFAULT_MIN_AGREEMENT.get(target.split("@", 1)[0], FALLBACK_MIN_AGREEMENT)


@dataclasses.dataclass(frozen=True)
class ValidateConfig(FrozenConfig):
    """Settings of :func:`edgekit.validate.validate`."""

    KIND = "validate"

    max_diff: float = 1e-4  # float targets: max |p_artifact - p_reference| on every holdout sample
    threads: int | None = None  # inference threads (None: 1, measured fastest for batch 1)
    runs: int = 300  # timed batch-1 runs per target (micro uses fewer)
    probe: bool = True  # load each file in a child process first (a damaged file cannot crash this one)
    devices: tuple[str, ...] = ()  # device URIs (ssh://, adb://, exec://) to validate on after the host
    device_timeout_s: float = 120.0  # per device step (reach, copy, run)
    # reduced-precision targets: lowest top-1 agreement (%) with the source model; None: each
    # target's default (DEFAULT_MIN_AGREEMENT), 0 turns the floor off
    min_agreement: float | None = None

    def __post_init__(self) -> None:
        if self.max_diff <= 0:
            raise UsageError(f"max_diff must be > 0. Received: {self.max_diff}.")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"threads must be >= 1. Received: {self.threads}.")
        if self.runs < 1:
            raise UsageError(f"runs must be >= 1. Received: {self.runs}.")
        if isinstance(self.devices, str) or not all(isinstance(d, str) and d.strip() for d in self.devices):
            raise UsageError("devices must be a list of device URIs such as ssh://pi@raspberrypi or "
                             f"exec:///usr/bin/python3. Received: {self.devices!r}.")
        object.__setattr__(self, "devices", tuple(dict.fromkeys(d.strip() for d in self.devices)))
        from edgekit.devices.transport import check_uri

        for uri in self.devices:  # a malformed or option-like URI fails here, before any work
            check_uri(uri)
        if not self.device_timeout_s > 0:
            raise UsageError(f"device_timeout_s must be > 0. Received: {self.device_timeout_s}.")
        if self.min_agreement is not None and not 0 <= self.min_agreement <= 100:
            raise UsageError(f"min_agreement must be a percent in [0, 100]. Received: {self.min_agreement}.")

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["devices"] = list(self.devices)  # YAML/JSON lists
        if self.min_agreement is None:  # the per-target defaults: written only when set
            d.pop("min_agreement")
        return d

    @classmethod
    def of(cls, config: "ValidateConfig | None" = None, **settings: Any) -> "ValidateConfig":
        """``config`` (default: the defaults) with ``settings`` applied, unknown names refused."""
        base = (config or cls()).to_dict()
        reject_unknown_keys("validate", settings, [f.name for f in dataclasses.fields(cls)])
        return cls(**{**base, **settings})
