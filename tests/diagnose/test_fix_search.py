"""The repair search of ``diagnose --fix`` on a scripted model: which layers it repairs, and how many
re-exports it needs, when the error is spread over many layers (no leave-one-out ranking)."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.diagnose.api import DiagnoseResult
from edgekit.diagnose.fix import PREFIX_MAX, _ranked_prefix, _Search
from edgekit.diagnose.layers import LayerError

NAMES = [f"block{i}_bn" for i in range(40)]


class ScriptedReexport:
    """Each layer in ``needed`` repaired adds ``gain`` % agreement and accuracy points to a base."""

    def __init__(self, needed: set[str], base: float = 90.0, gain: float = 2.0):
        self.needed, self.base, self.gain, self.calls = needed, base, gain, 0

    def __call__(self, keep_float=(), int16=()):
        self.calls += 1
        return tuple(keep_float) + tuple(int16)

    def scores(self, data, x, y, ref):
        n = len(self.needed & set(data))
        return (self.base + self.gain * n) / 100, self.base + self.gain * n


def _result(noise: list[float]) -> DiagnoseResult:
    layers = [LayerError(n, (n,), n, "int8", 0.1, 0.1, 10.0, 0.9, nsr_added=v) for n, v in zip(NAMES, noise)]
    return DiagnoseResult("a.tflite", 100, 0.99, 0.90, None, layers)


def _search(make, min_agreement=98.0, max_drop_pt=100.0) -> _Search:
    xy = (np.zeros((1, 1)), np.zeros(1))
    return _Search(make, "int16", xy, np.zeros(1), 0.99, max_drop_pt, min_agreement, lambda _m: None)


def test_the_shortest_prefix_of_the_noise_ranking_in_few_reexports():
    """The five noisiest of 40 layers are needed: prefixes 1, 2, 4, 8, then bisection to 5."""
    make = ScriptedReexport(set(NAMES[:5]), base=89.0)  # 4 layers: 97%, 5: 99%
    search = _search(make)
    keep, best = _ranked_prefix(_result([1.0 / (i + 1) for i in range(40)]), search, [])
    assert keep == NAMES[:5] and best == (0.99, 99.0)
    assert make.calls <= 2 * 6  # about 2 log2(40), not 40
    assert [len(s["int16"]) for s in search.steps] == [1, 2, 4, 8, 6, 5]


def test_the_ranking_order_not_the_layer_order():
    """The needed layers are ranked first even where they sit late in the model."""
    noise = [0.001] * 40
    for i in (30, 35):
        noise[i] = 0.5
    make = ScriptedReexport({NAMES[30], NAMES[35]}, base=94.0)
    keep, _ = _ranked_prefix(_result(noise), _search(make), [])
    assert sorted(keep) == [NAMES[30], NAMES[35]]


def test_when_nothing_is_enough_it_keeps_the_best_tried_and_says_not_within():
    make = ScriptedReexport({NAMES[0]}, base=90.0, gain=1.0)  # 91% at best: below 98
    search = _search(make)
    keep, best = _ranked_prefix(_result([1.0 / (i + 1) for i in range(40)]), search, [])
    assert keep == NAMES[:1] and best == (0.91, 91.0) and not search.within(best)
    assert max(len(s["int16"]) for s in search.steps) == 40  # the whole ranking was tried


def test_float_layers_and_noiseless_layers_are_not_candidates():
    noise = [1.0 / (i + 1) for i in range(40)]
    result = _result(noise)
    result.layers[0].dtype = "float32"
    for r in result.layers[3:]:
        r.nsr_added = 0.0
    make = ScriptedReexport(set(NAMES[:3]))
    search = _search(make)
    keep, best = _ranked_prefix(result, search, [])
    assert keep == NAMES[1:3] and best == (0.94, 94.0) and not search.within(best)
    assert all(NAMES[0] not in s["int16"] for s in search.steps)


@pytest.mark.parametrize("agreement,drop,within", [(98.5, 0.4, True), (97.9, 0.4, False), (98.5, 0.6, False)])
def test_within_needs_both_the_drop_and_the_agreement(agreement, drop, within):
    search = _search(ScriptedReexport(set()), min_agreement=98.0, max_drop_pt=0.5)
    assert search.within((0.99 - drop / 100, agreement)) is within


def test_the_prefix_is_capped_and_a_layer_already_kept_leads_it():
    names = [f"l{i}" for i in range(100)]
    layers = [LayerError(n, (n,), n, "int8", 0.1, 0.1, 10.0, 0.9, nsr_added=1.0 / (i + 1))
              for i, n in enumerate(names)]
    search = _search(ScriptedReexport(set()))
    _ranked_prefix(DiagnoseResult("a.tflite", 100, 0.99, 0.9, None, layers), search, ["l50"])
    assert max(len(s["int16"]) for s in search.steps) == PREFIX_MAX
    assert all(s["int16"][0] == "l50" for s in search.steps)


def test_a_limit_below_one_layer_or_no_noisy_layer_tries_nothing():
    make = ScriptedReexport(set(NAMES[:1]))
    assert _ranked_prefix(_result([0.0] * 40), _search(make), []) is None
    assert _ranked_prefix(_result([1.0] * 40), _search(make), [], limit=0) is None
    assert make.calls == 0



def test_a_set_the_exporter_refuses_is_skipped_and_the_nearest_prefix_kept():
    """A layer with no 16-bit kernel makes every longer prefix refused: the search goes on and keeps the
    prefix nearest the limits (here the agreement gained by the first two layers)."""
    from edgekit.errors import UsageError

    class Refusing(ScriptedReexport):
        def __call__(self, keep_float=(), int16=()):
            if NAMES[2] in int16:
                raise UsageError(f"--int16: no 16-bit kernel for {NAMES[2]}")
            return super().__call__(keep_float, int16)

    make = Refusing(set(NAMES[:2]), base=90.0, gain=3.0)  # two layers: 96%, below 98
    search = _search(make)
    keep, best = _ranked_prefix(_result([1.0 / (i + 1) for i in range(40)]), search, [])
    assert keep == NAMES[:2] and best == (0.96, 96.0) and not search.within(best)
    refused = [s for s in search.steps if "refused" in s]
    assert refused and all(NAMES[2] in s["int16"] for s in refused)
    assert search.shortfall(best) == pytest.approx(2.0)  # points of agreement under the 98% floor
