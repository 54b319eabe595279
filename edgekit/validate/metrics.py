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
    return {
        "accuracy": acc,
        "accuracy_drop_pt": (ref_acc - acc) * 100.0,
        "agreement_pct": float((probs.argmax(1) == reference.argmax(1)).mean() * 100.0),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "disagreements": int((probs.argmax(1) != reference.argmax(1)).sum()),
        "samples": int(len(y)),
        "output_scale": max(1.0, float(finite.max())) if finite.size else 1.0,
    }


def tolerance_failure(target: str, m: dict[str, Any], exact: bool, max_diff: float) -> ValidationError | None:
    """The float-parity miss of ``compare``'s metrics ``m`` (None when ``exact`` is off or it holds)."""
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
    return "ok" if fail is None else f"failed: {fail.metric} {fail.value:.3g} > limit {fail.limit:.3g}"
