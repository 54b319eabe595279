"""``DiagnoseConfig``: the options of ``edgekit diagnose`` (the recipe's ``diagnose`` section)."""
from __future__ import annotations

import dataclasses

from edgekit.configs import FrozenConfig
from edgekit.errors import UsageError
from edgekit.vocab import ONNX_INT8, TFLITE_INT8

DIAGNOSABLE = (TFLITE_INT8, ONNX_INT8)  # the targets whose artifacts diagnose reads and re-exports
REPAIRS = ("keep_float", "int16")  # how a layer is repaired: float32 ops, or 16-bit activations


@dataclasses.dataclass(frozen=True)
class DiagnoseConfig(FrozenConfig):
    """Which exported artifact to diagnose and how.

    ``target``: tflite-int8 or onnx-int8 (None: the first of them that the export builds);
    ``samples``: holdout images compared; ``leave_one_out``: re-export with each layer in float;
    ``fix``: propose the fewest layers to repair (``repair``: keep_float, or int16 for
    tflite-int8) until the drop against float is within ``max_accuracy_drop`` points and (when
    set) the top-1 agreement with float is at least ``min_agreement`` %;
    ``representative_samples``: calibration images of the re-exports.
    """

    KIND = "diagnose"

    target: str | None = None
    samples: int = 500
    leave_one_out: bool = True
    fix: bool = False
    repair: str = "keep_float"
    max_accuracy_drop: float = 0.5
    min_agreement: float | None = None
    representative_samples: int = 300

    def __post_init__(self) -> None:
        if self.target is not None and self.target not in DIAGNOSABLE:
            from edgekit.registry import unknown_name

            raise unknown_name("diagnose target", self.target, list(DIAGNOSABLE))
        if self.repair not in REPAIRS:
            from edgekit.registry import unknown_name

            raise unknown_name("repair", self.repair, list(REPAIRS))
        if self.samples < 1 or self.representative_samples < 1:
            raise UsageError(f"samples and representative_samples must be >= 1. Received: {self.samples}, "
                             f"{self.representative_samples}.")
        if self.repair == "int16" and self.target == ONNX_INT8:
            raise UsageError("repair int16 (16-bit activations) is a tflite-int8 repair; onnx-int8 repairs with "
                             "keep_float. Received: target onnx-int8, repair int16.")
        if self.min_agreement is not None and not 0 < self.min_agreement <= 100:
            raise UsageError(f"min_agreement is a percentage in (0, 100]. Received: {self.min_agreement}.")
        if self.max_accuracy_drop < 0:
            raise UsageError(f"max_accuracy_drop must not be negative. Received: {self.max_accuracy_drop}.")

    def target_of(self, targets: tuple[str, ...] | list[str]) -> str | None:
        """The target to diagnose among the exported ``targets`` (None: none is diagnosable)."""
        if self.target is not None:
            return self.target if self.target in targets else None
        return next((t for t in targets if t in DIAGNOSABLE), None)
