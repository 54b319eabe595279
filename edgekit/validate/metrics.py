"""Comparison metrics of an artifact's predictions against the Keras reference."""
from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.errors import ValidationError


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy as a fraction in [0, 1]."""
    return float((probs.argmax(1) == y).mean()) if len(y) else float("nan")


def compare(reference: np.ndarray, probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy, top-1 agreement (%), max/mean absolute output difference and ``output_scale``: the
    reference's largest |output| when above 1 (logits), else 1 (probabilities); float parity is
    judged on max |diff| / output_scale, float32 rounding being relative to the values' size."""
    if reference.shape != probs.shape:
        raise ValueError(f"reference {reference.shape} and artifact {probs.shape} outputs differ in shape")
    diff = np.abs(probs.astype(np.float64) - reference.astype(np.float64))
    finite = np.abs(reference[np.isfinite(reference)])
    ref_acc, acc = accuracy(reference, y), accuracy(probs, y)
    bad_ref, bad_out = _nonfinite_rows(reference), _nonfinite_rows(probs)
    return {
        "accuracy": acc,
        "accuracy_drop_pt": (ref_acc - acc) * 100.0,
        "agreement_pct": _agreement(reference, probs, bad_ref, bad_out),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "disagreements": int((probs.argmax(1) != reference.argmax(1)).sum()),
        "samples": int(len(y)),
        "output_scale": max(1.0, float(finite.max())) if finite.size else 1.0,
        "nonfinite_reference": bad_ref,  # images whose reference output holds NaN or inf
        "nonfinite_outputs": bad_out,  # images whose artifact output does
    }


def _nonfinite_rows(a: np.ndarray) -> int:
    """How many rows (images) of ``a`` hold a NaN or inf."""
    return int((~np.isfinite(a.reshape(len(a), -1))).any(axis=1).sum()) if a.size else 0


def _agreement(reference: np.ndarray, probs: np.ndarray, bad_ref: int, bad_out: int) -> float:
    """Top-1 agreement (%); 0 when either side has a non-finite output (argmax of NaN means nothing)."""
    if bad_ref or bad_out:
        return 0.0
    return float((probs.argmax(1) == reference.argmax(1)).mean() * 100.0) if len(probs) else float("nan")


def nonfinite_failure(target: str, m: dict[str, Any]) -> ValidationError | None:
    """A NaN or inf in the source model's or the artifact's outputs: always a failure."""
    for key, who in (("nonfinite_reference", "the source model"), ("nonfinite_outputs", "the artifact")):
        n = int(m.get(key, 0))
        if n:
            return ValidationError(target, key, n, 0, f"{who} gives NaN or inf outputs on {n} of {m['samples']} "
                                   "holdout images; such outputs cannot be compared or used")
    return None


def agreement_failure(target: str, m: dict[str, Any], floor: float) -> ValidationError | None:
    """Top-1 agreement below ``floor`` (%) for a reduced-precision target."""
    if m["agreement_pct"] < floor:
        return ValidationError(target, "agreement_pct", m["agreement_pct"], floor,
                               f"top-1 agreement with the source model is below the floor of {floor:g}% for "
                               f"{target}; {m['disagreements']} of {m['samples']} images differ. Check the "
                               "calibration data, keep sensitive layers float (edgekit diagnose), or lower the "
                               "floor with min_agreement")
    return None


def tolerance_failure(target: str, m: dict[str, Any], exact: bool, max_diff: float,
                      min_agreement: float | None = None) -> ValidationError | None:
    """The first miss of ``compare``'s metrics ``m``: non-finite outputs; for an ``exact`` (float)
    target, float parity within ``max_diff``; else agreement below the target's floor
    (``min_agreement``, default :func:`edgekit.validate.config.agreement_floor`). None when it holds."""
    from edgekit.validate.config import agreement_floor

    bad = nonfinite_failure(target, m)
    if bad is not None:
        return bad
    if not exact:
        return agreement_failure(target, m, agreement_floor(target, min_agreement))
    scale = m.get("output_scale", 1.0)
    if exact and not m["max_abs_diff"] <= max_diff * scale:
        detail = f"{m['disagreements']} of {m['samples']} top-1 disagreements"
        if scale > 1.0:
            detail += f"; the limit is {max_diff:g} times the outputs' largest magnitude {scale:.3g}"
        return ValidationError(target, "max_abs_diff", m["max_abs_diff"], max_diff * scale, detail)
    if exact and m["agreement_pct"] < 100.0:
        return ValidationError(target, "agreement_pct", m["agreement_pct"], 100.0)
    return None


def status_of(fail: ValidationError | None) -> str:
    if fail is None:
        return "ok"
    op = "<" if fail.metric == "agreement_pct" else ">"
    return f"failed: {fail.metric} {fail.value:.3g} {op} limit {fail.limit:.3g}"
