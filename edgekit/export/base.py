"""Export targets: the Target protocol, the TARGETS registry and the export configuration."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from edgekit.errors import UsageError
from edgekit.configs import FrozenConfig
from edgekit.registry import Registry
from edgekit.vocab import RUNTIMES

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
LAYER_LISTS = ("keep_float", "int16")  # ExportConfig fields naming Keras layers


@dataclasses.dataclass(frozen=True)
class ExportConfig(FrozenConfig):
    """Options of the export stage (shared by every target). How the artifacts are then
    validated is :class:`edgekit.validate.ValidateConfig`."""

    KIND = "export"

    representative_samples: int = 300  # calibration images drawn from the training split
    opset: int = 17  # ONNX opset
    calibration: str = "minmax"  # onnx-int8 calibration: minmax, entropy, percentile
    require_full_mapping: bool = False  # edgetpu: fail when any op would leave the TPU
    arena_size: int | None = None  # micro: the arena the device has (bytes); None: find the minimum
    edgetpu_timeout_s: int = 180  # edgetpu_compiler timeout
    keep_float: tuple[str, ...] = ()  # tflite-int8, onnx-int8: Keras layers whose ops stay float32
    int16: tuple[str, ...] = ()  # tflite-int8: Keras layers with 16-bit activations (ai-edge-quantizer)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in LAYER_LISTS:
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value or ()))
        if self.keep_float and self.int16:
            raise UsageError(f"Give int16 or keep_float, not both. Received: int16 {', '.join(self.int16)} and "
                             f"keep_float {', '.join(self.keep_float)}.")
        if self.representative_samples < 1:
            raise UsageError(
                "representative_samples must be >= 1: int8 targets calibrate on training images. "
                f"Received: {self.representative_samples}."
            )
        if not 9 <= self.opset <= 18:
            raise UsageError(f"opset must be between 9 and 18 (what tf2onnx 1.17 writes). Received: {self.opset}.")
        if self.calibration not in CALIBRATION_METHODS:
            from edgekit.registry import unknown_name

            raise unknown_name("calibration method", self.calibration, list(CALIBRATION_METHODS))
        if self.arena_size is not None and self.arena_size < 1:
            raise UsageError(f"arena_size must be a positive number of bytes. Received: {self.arena_size}.")

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        for name in LAYER_LISTS:  # unset: the dict (and the export stage's key) stays what it was before the field
            d[name] = list(getattr(self, name))
            if not d[name]:
                del d[name]
        return d


@dataclasses.dataclass
class ExportContext:
    """What a target builds from: the model, calibration data, config and a cache.

    ``model`` is the tf_keras model when the handle has one (tf_keras files, translated Keras 3
    models: today's exact conversion path), else None; ``handle`` is the
    :class:`~edgekit.models.ModelHandle` (``handle.tf_graph()`` for the other formats).
    ``input_shape`` is NHWC (what the dataset's images are). The cache lets targets share work
    within one export call (e.g. the full-int8 flatbuffer is converted once for tflite-int8,
    edgetpu and micro).
    """

    model: Any
    config: ExportConfig
    representative: np.ndarray | None
    input_shape: tuple[int, ...]
    progress: Callable[[str], None]
    cache: dict[str, Any] = dataclasses.field(default_factory=dict)
    handle: Any = None

    def calibration(self, target: str) -> np.ndarray:
        if self.representative is None or len(self.representative) == 0:
            raise UsageError(
                f"Target {target!r} needs calibration data: pass a dataset (--dataset) so "
                f"{self.config.representative_samples} training images can be drawn."
            )
        return self.representative

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


@dataclasses.dataclass(frozen=True)
class ExportedFile:
    """One file a target wrote (path relative to the output folder)."""

    path: str
    kind: str


@dataclasses.dataclass
class TargetOutput:
    """What a target produced: its files, the primary (runnable) artifact and facts."""

    target: str
    files: list[ExportedFile]
    primary: str  # relative path of the artifact the validator runs
    runtime: str  # a runtime name from edgekit.vocab (a key of edgekit.runtimes.RUNTIMES)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "primary": self.primary, "runtime": self.runtime,
                "files": [dataclasses.asdict(f) for f in self.files], "info": self.info}


class Target(Protocol):
    """An export target: builds its files into ``stage`` (a temporary folder)."""

    name: str
    description: str
    needs: str  # what the target needs (calibration data, a compiler ...)
    runtime: str  # which runtime validates it: a key of edgekit.runtimes.RUNTIMES (edgekit.vocab)
    exact: bool  # float target: must match Keras within max_diff on every sample
    files: tuple[str, ...]  # relative paths it writes (for overwrite checks)

    def build(self, ctx: ExportContext, stage: Path) -> TargetOutput: ...


@dataclasses.dataclass(frozen=True)
class SimpleTarget:
    """A Target from a build function."""

    name: str
    description: str
    needs: str
    runtime: str
    exact: bool
    files: tuple[str, ...]
    fn: Callable[[ExportContext, Path, "SimpleTarget"], TargetOutput]
    quantized: bool = False  # int8 activations (needs calibration data)

    def build(self, ctx: ExportContext, stage: Path) -> TargetOutput:
        return self.fn(ctx, stage, self)


TARGETS: Registry[SimpleTarget] = Registry("target")


def target(name: str, *, description: str, needs: str, runtime: str, exact: bool, files: tuple[str, ...],
           quantized: bool = False) -> Callable:
    """Decorator registering a build function as a target."""

    if runtime not in RUNTIMES:
        raise ValueError(f"target {name!r}: unknown runtime {runtime!r} (expected one of {RUNTIMES})")

    def deco(fn: Callable) -> Callable:
        TARGETS.add(name, SimpleTarget(name, description, needs, runtime, exact, files, fn, quantized))
        return fn

    return deco
