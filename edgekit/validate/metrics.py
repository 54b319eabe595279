"""Comparison metrics of an artifact's predictions against the Keras reference."""
from __future__ import annotations

import numpy as np


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy as a fraction in [0, 1]."""
    return float((probs.argmax(1) == y).mean()) if len(y) else float("nan")


def compare(reference: np.ndarray, probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy, top-1 agreement (%) and max/mean absolute probability difference."""
    if reference.shape != probs.shape:
        raise ValueError(f"reference {reference.shape} and artifact {probs.shape} outputs differ in shape")
    diff = np.abs(probs.astype(np.float64) - reference.astype(np.float64))
    ref_acc, acc = accuracy(reference, y), accuracy(probs, y)
    return {
        "accuracy": acc,
        "accuracy_drop_pt": (ref_acc - acc) * 100.0,
        "agreement_pct": float((probs.argmax(1) == reference.argmax(1)).mean() * 100.0),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "disagreements": int((probs.argmax(1) != reference.argmax(1)).sum()),
        "samples": int(len(y)),
    }
