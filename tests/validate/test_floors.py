"""Agreement floors of reduced-precision targets and non-finite outputs: never usable, never 100 %."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import UsageError
from edgekit.validate import ValidateConfig
from edgekit.validate.config import DEFAULT_MIN_AGREEMENT, agreement_floor
from edgekit.validate.metrics import compare, status_of, tolerance_failure

REF = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0, 1, 2, 3, 0, 1]] * 0.9 + 0.025
Y = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])


def _rotated(n: int) -> np.ndarray:
    """REF with the top-1 class of its first ``n`` rows moved to the next class."""
    out = REF.copy()
    out[:n] = np.roll(out[:n], 1, axis=1)
    return out


def test_default_floors_per_target_family():
    assert [agreement_floor(t) for t in ("tflite-int8", "edgetpu", "micro", "onnx-int8")] == [90.0] * 4
    assert agreement_floor("tflite-int4") == 85.0 and agreement_floor("tflite-fp16") == 98.0
    assert agreement_floor("tflite-dynamic") == 97.0 and agreement_floor("micro@ssh://pi") == 90.0
    assert agreement_floor("tflite-int8", 50) == 50.0 and set(DEFAULT_MIN_AGREEMENT) >= {"tflite-int4", "micro"}


def test_int8_below_its_floor_fails_naming_target_agreement_and_floor():
    m = compare(REF, _rotated(9), Y)  # 1 of 10 agrees
    assert m["agreement_pct"] == pytest.approx(10.0) and m["disagreements"] == 9
    fail = tolerance_failure("tflite-int8", m, exact=False, max_diff=1e-4)
    assert fail is not None and fail.exit_code == 1 and (fail.metric, fail.limit) == ("agreement_pct", 90.0)
    msg = str(fail)
    assert msg.startswith("tflite-int8: agreement_pct = 10 is outside the limit 90") and "\n" not in msg
    assert "floor of 90%" in msg and "min_agreement" in msg
    assert status_of(fail) == "failed: agreement_pct 10 < limit 90"


def test_floor_holds_at_the_edge_and_is_overridable():
    m = compare(REF, _rotated(1), Y)  # 90 %
    assert tolerance_failure("tflite-int8", m, False, 1e-4) is None
    assert tolerance_failure("tflite-fp16", m, False, 1e-4).limit == 98.0
    assert tolerance_failure("tflite-fp16", m, False, 1e-4, min_agreement=85) is None
    assert tolerance_failure("tflite-int8", compare(REF, _rotated(9), Y), False, 1e-4, min_agreement=0) is None


@pytest.mark.parametrize("side", ["artifact", "reference"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_outputs_fail_every_target(side, bad):
    ref, art = REF.copy(), REF.copy()
    (art if side == "artifact" else ref)[[2, 5], 0] = bad
    m = compare(ref, art, Y)
    key = "nonfinite_outputs" if side == "artifact" else "nonfinite_reference"
    assert m[key] == 2 and m["agreement_pct"] == 0.0
    for target, exact in (("tflite-int8", False), ("tflite", True), ("onnx-int8", False)):
        fail = tolerance_failure(target, m, exact, 1e-4, min_agreement=0)
        assert fail is not None and fail.metric == key and fail.value == 2 and "NaN or inf" in str(fail)


def test_config_min_agreement_checked_and_round_trips():
    assert "min_agreement" not in ValidateConfig().to_dict()  # the per-target defaults are not written
    c = ValidateConfig.of(min_agreement=95)
    assert c.min_agreement == 95 and ValidateConfig.from_dict(c.to_dict()) == c
    for bad in (-1, 101):
        with pytest.raises(UsageError, match="min_agreement must be a percent"):
            ValidateConfig(min_agreement=bad)
