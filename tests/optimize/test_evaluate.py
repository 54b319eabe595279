"""The evaluator's time estimate: a candidate starts only when the time left fits it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.optimize.config import OptimizeConfig
from edgekit.optimize.evaluate import Evaluator
from edgekit.optimize.state import SearchState


def evaluator(seconds_by_tune: list[tuple[float, int]], first: float = 30.0) -> Evaluator:
    state = SearchState(Path("unused.json"), "k", {})
    state.results["baseline"] = {"seconds": 2.0, "candidate": {"baseline": True}}
    for i, (s, tune) in enumerate(seconds_by_tune):
        state.results[f"c{i}"] = {"seconds": s, "candidate": {"baseline": False, "tune": tune}}
    return Evaluator(Path("m.keras"), None, OptimizeConfig(), Path("out"), state, 0.9, np.zeros(1), "litert",
                     lambda m: None, first_estimate_s=first)


def test_first_guess_until_a_compressed_candidate_is_measured():
    assert evaluator([]).estimate() == 30.0
    assert evaluator([]).estimate(4) == 120.0


def test_a_longer_fine_tune_is_not_counted_twice():
    # 20 s at x1 and 98 s at x8 (12.25 s per unit): a x16 candidate is 16 x 20 s (the slowest per unit,
    # max(median, 0.75 x max)), not 16 x 0.75 x 98 s
    ev = evaluator([(20.0, 1), (98.0, 8)])
    assert ev.estimate(16) == pytest.approx(16 * max((20.0 + 12.25) / 2, 0.75 * 20.0))
    assert ev.estimate() == pytest.approx(max((20.0 + 12.25) / 2, 0.75 * 20.0))
    # the old rule (seconds as measured, times the multiplier) would have said 16 x 73.5 s = 19.6 min
    assert ev.estimate(16) < 16 * 0.75 * 98.0 / 3
