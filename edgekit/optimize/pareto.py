"""The Pareto front of the evaluated candidates: those no other candidate beats on every objective
(at least as good on all, strictly better on one)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

# (field, direction): smaller files and latency, higher accuracy
OBJECTIVES: tuple[tuple[str, str], ...] = (("raw_bytes", "min"), ("gzip_bytes", "min"), ("latency_us", "min"),
                                           ("val_accuracy", "max"))


def _value(point: Mapping[str, Any], field: str, direction: str) -> float:
    v = point.get(field)
    if v is None:  # not measured: worst possible
        return float("inf")
    return float(v) if direction == "min" else -float(v)


def dominates(a: Mapping[str, Any], b: Mapping[str, Any], objectives: Sequence[tuple[str, str]] = OBJECTIVES) -> bool:
    """True when ``a`` is at least as good as ``b`` on every objective and better on one."""
    va = [_value(a, f, d) for f, d in objectives]
    vb = [_value(b, f, d) for f, d in objectives]
    return all(x <= y for x, y in zip(va, vb)) and any(x < y for x, y in zip(va, vb))


def pareto_front(points: Sequence[Mapping[str, Any]],
                 objectives: Sequence[tuple[str, str]] = OBJECTIVES) -> list[int]:
    """Indices (in input order) of the points no other point dominates; of identical points, the first."""
    front = []
    for i, p in enumerate(points):
        vi = [_value(p, f, d) for f, d in objectives]
        beaten = any(dominates(q, p, objectives) or ([_value(q, f, d) for f, d in objectives] == vi and j < i)
                     for j, q in enumerate(points) if j != i)
        if not beaten:
            front.append(i)
    return front
