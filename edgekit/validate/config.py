"""ValidateConfig: how artifacts are checked on their runtimes (one place for the settings
and their checks; export, the recipe's validate section and the CLI build on it)."""
from __future__ import annotations

import dataclasses
from typing import Any

from edgekit.configs import FrozenConfig
from edgekit.errors import UsageError
from edgekit.registry import reject_unknown_keys


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
        if not self.device_timeout_s > 0:
            raise UsageError(f"device_timeout_s must be > 0. Received: {self.device_timeout_s}.")

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["devices"] = list(self.devices)  # YAML/JSON lists
        return d

    @classmethod
    def of(cls, config: "ValidateConfig | None" = None, **settings: Any) -> "ValidateConfig":
        """``config`` (default: the defaults) with ``settings`` applied, unknown names refused."""
        base = (config or cls()).to_dict()
        reject_unknown_keys("validate", settings, list(base))
        return cls(**{**base, **settings})
