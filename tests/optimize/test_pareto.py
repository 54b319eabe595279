"""The Pareto front on synthetic points."""
from __future__ import annotations

from edgekit.optimize.pareto import dominates, pareto_front

OBJ = (("raw_bytes", "min"), ("val_accuracy", "max"))


def p(raw, acc, **kw):
    return {"raw_bytes": raw, "val_accuracy": acc, **kw}


def test_front_of_two_objectives():
    pts = [p(100, 0.90), p(50, 0.85), p(120, 0.89), p(50, 0.80), p(30, 0.70), p(200, 0.95), p(60, 0.85)]
    # (120, .89) is beaten by (100, .90); (50, .80) by (50, .85); (60, .85) by (50, .85)
    assert pareto_front(pts, OBJ) == [0, 1, 4, 5]


def test_identical_points_keep_the_first_and_missing_values_count_as_worst():
    pts = [p(10, 0.5), p(10, 0.5), p(None, 0.99), p(5, None)]
    assert pareto_front(pts, OBJ) == [0, 2, 3]
    assert dominates(p(10, 0.5), p(None, 0.5), OBJ) and not dominates(p(None, 0.5), p(10, 0.5), OBJ)


def test_default_objectives_use_size_gzip_latency_and_accuracy():
    a = {"raw_bytes": 100, "gzip_bytes": 50, "latency_us": 10.0, "val_accuracy": 0.9}
    slower = {**a, "latency_us": 12.0}
    smaller_gzip = {**a, "gzip_bytes": 40, "val_accuracy": 0.89}
    assert pareto_front([a, slower, smaller_gzip]) == [0, 2]
