"""``diagnose --fix``: the fewest layers to repair (in float, or at 16-bit activations) until the
re-exported artifact is within the accuracy drop, and the agreement floor, against its float model."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from edgekit.data import Dataset
from edgekit.diagnose.api import QUANTIZED, DiagnoseResult, Reexport, check_repair, holdout_sample

PAIR_TRIES = 3  # worst-ranked layers tried together with the layers that feed them
PREFIX_MAX = 64  # the most layers the ranked-prefix search repairs


class _Search:
    """Re-exports with a set of layers repaired, scored (accuracy, agreement) and logged in ``steps``."""

    def __init__(self, make: Reexport, repair: str, xy: tuple[np.ndarray, np.ndarray], ref: np.ndarray,
                 float_accuracy: float, max_drop_pt: float, min_agreement: float | None,
                 say: Callable[[str], None]):
        self.make, self.repair, self.xy, self.ref = make, repair, xy, ref
        self.float_accuracy, self.max_drop_pt, self.min_agreement = float_accuracy, max_drop_pt, min_agreement
        self.say, self.steps = say, []  # type: list[dict[str, Any]]
        self.how = "in float" if repair == "keep_float" else "at 16-bit activations"

    def score(self, layers: list[str], why: str = "") -> tuple[float, float]:
        """(accuracy, agreement) of the re-export with ``layers`` repaired; (-1, -1) when the exporter
        refuses that set (a layer with no 16-bit kernel): never within, and the search goes on."""
        from edgekit.errors import UsageError, first_line

        if layers:
            self.say(f"fix: {why or ', '.join(layers)} {self.how}")
        try:
            acc, agree = self.make.scores(self.make(**{self.repair: tuple(layers)}), *self.xy, self.ref)
        except UsageError as e:
            self.steps.append({self.repair: list(layers), "refused": first_line(e)})
            self.say(f"fix: refused: {first_line(e)[:160]}")
            return -1.0, -1.0
        self.steps.append({self.repair: list(layers), "accuracy": acc, "agreement_pct": agree})
        return acc, agree

    def shortfall(self, s: tuple[float, float]) -> float:
        """Points by which ``s`` misses the limits (0: within)."""
        if s[0] < 0:  # refused by the exporter
            return float("inf")
        drop = max(0.0, 100 * (self.float_accuracy - s[0]) - self.max_drop_pt)
        return drop + (max(0.0, self.min_agreement - s[1]) if self.min_agreement is not None else 0.0)

    def within(self, s: tuple[float, float]) -> bool:
        return self.shortfall(s) == 0.0


def propose_fix(model_or_path: Any, result: DiagnoseResult, dataset: Dataset, *, max_drop_pt: float = 0.5,
                min_agreement: float | None = None, representative_samples: int = 300,
                repair: str = "keep_float", progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The fewest layers to repair until the re-export's drop against float is within
    ``max_drop_pt`` points and (when given) its top-1 agreement with float is at least
    ``min_agreement`` %. First greedy: add the group that recovered the most (leave-one-out, in
    float); then the worst-ranked layers with the layers feeding them (:func:`_pairs`); then the
    shortest prefix of the ranking by noise added (:func:`_ranked_prefix`: all that a diagnosis
    without leave-one-out has). ``repair``: ``keep_float`` (those layers' ops in float32) or
    ``int16`` (16-bit activations, 8-bit weights: ai-edge-quantizer); the result names the set
    under that key. Accuracy and agreement are measured in the target's runtime."""
    from edgekit.models import load

    check_repair(result.target, repair)
    handle = load(model_or_path)
    model = handle.keras_model("diagnose")
    x, y = holdout_sample(dataset, result.samples)
    rep = dataset.representative(min(representative_samples, len(dataset.x_train)))
    search = _Search(Reexport(model, result.target, rep), repair, (x, y), handle.predict(x).argmax(1),
                     result.float_accuracy, max_drop_pt, min_agreement, progress or (lambda _m: None))
    if result.reexport_accuracy is not None and result.reexport_agreement_pct is not None:
        base = best = (result.reexport_accuracy, result.reexport_agreement_pct)  # diagnose's re-export, as is
        search.steps.append({repair: [], "accuracy": base[0], "agreement_pct": base[1]})
    else:
        base = best = search.score([])
    keep: list[str] = []
    for r in sorted((r for r in result.layers if (r.recovered_pt or 0) > 0), key=lambda r: -(r.recovered_pt or 0)):
        if search.within(best):
            break
        keep.append(r.layers[-1])
        best = search.score(keep)
    if not search.within(best):
        greedy = list(keep)
        keep, best = _pairs(model, result, search, keep, best)
        # the prefix when the pairs were not enough, or a shorter one than theirs
        limit = len(keep) - 1 if search.within(best) else PREFIX_MAX
        found = _ranked_prefix(result, search, greedy, limit=limit)
        if found and (_better(found[1], best, search) or (search.within(found[1]) and len(found[0]) < len(keep))):
            keep, best = found
    return {"repair": repair, "keep_float": keep if repair == "keep_float" else [],
            "int16": keep if repair == "int16" else [], "max_drop_pt": max_drop_pt, "min_agreement": min_agreement,
            "before_accuracy": base[0], "before_agreement_pct": base[1], "after_accuracy": best[0],
            "after_agreement_pct": best[1], "float_accuracy": result.float_accuracy,
            "within": search.within(best), "steps": search.steps}


def _better(a: tuple[float, float], b: tuple[float, float], search: _Search) -> bool:
    """Whether score ``a`` beats ``b``: nearer the limits (points of accuracy drop over the limit plus
    points of agreement under the floor), then accuracy, then agreement."""
    return (-search.shortfall(a), a) > (-search.shortfall(b), b)


def _pairs(model: Any, result: DiagnoseResult, search: _Search, keep: list[str],
           best: tuple[float, float]) -> tuple[list[str], tuple[float, float]]:
    """When no set of layers that recover alone is enough: the precision may be lost on the
    tensor *between* two layers (an activation outlier sets its int8 scale), which only
    repairing both ends mends. Try each of the :data:`PAIR_TRIES` worst-ranked layers together
    with the layers feeding it; keep the best if it beats ``best``."""
    chosen = keep
    for r in sorted(result.layers, key=lambda r: -r.nsr_added)[:PAIR_TRIES]:
        feeds = _feeds(model, r, {name for x in result.layers for name in x.layers})
        trial = list(dict.fromkeys([*keep, *feeds, r.layers[-1]]))
        if not feeds or trial == chosen:
            continue
        s = search.score(trial, f"{', '.join(trial)} (a layer with the layers feeding it)")
        if _better(s, best, search):
            chosen, best = trial, s
        if search.within(best):
            break
    return chosen, best


SHAPE_ONLY = {"Reshape", "Flatten", "Permute", "RepeatVector"}  # pass their input on: look through them


def _feeds(model: Any, row: Any, grouped: set[str] | None = None) -> list[str]:
    """The layers whose outputs feed the group of ``row`` (its input tensors), model inputs aside;
    through layers that only reshape (their ops are shape arithmetic, which has no 16-bit kernel)
    and, given the layers of the diagnosed groups (``grouped``), through layers with no op of their
    own (Dropout and the like, folded away in the artifact)."""
    from edgekit.export.layermap import inbound_layers

    out, todo, seen = [], list(inbound_layers(model.get_layer(row.layers[0]))), set()
    while todo:
        layer = todo.pop(0)
        if layer.name in seen or layer.__class__.__name__ == "InputLayer":
            continue
        seen.add(layer.name)
        if layer.__class__.__name__ in SHAPE_ONLY or (grouped is not None and layer.name not in grouped):
            todo.extend(inbound_layers(layer))
        else:
            out.append(layer.name)
    return out


def _ranked_prefix(result: DiagnoseResult, search: _Search, lead: list[str],
                   limit: int = PREFIX_MAX) -> tuple[list[str], tuple[float, float]] | None:
    """When no layer recovers much alone (the error is spread over many tensors, as in the
    depthwise layers of EfficientNet at a small input), or leave-one-out was skipped: the shortest
    prefix of the ranking by noise added (``lead`` first) that is within the limits. Prefixes of 1,
    2, 4 ... layers until one is, then bisection between the last two, so a model with hundreds of
    layers needs about 2 log2(n) re-exports. At most ``limit`` layers; the prefix nearest the limits
    when none is within; None when there is no layer to try."""
    rows = [r for r in sorted(result.layers, key=lambda r: -r.nsr_added) if r.nsr_added > 0 and r.dtype in QUANTIZED]
    ranked = list(dict.fromkeys([*lead, *(r.layers[-1] for r in rows)]))[:max(limit, 0)]
    if not ranked:
        return None
    tried: dict[int, tuple[float, float]] = {}

    def measure(k: int) -> tuple[float, float]:
        if k not in tried:
            tried[k] = search.score(ranked[:k], f"the {k} layer{'s' * (k > 1)} adding the most noise")
        return tried[k]

    lo, k = 0, 1
    while k < len(ranked) and not search.within(measure(k)):
        lo, k = k, min(2 * k, len(ranked))
    if not search.within(measure(k)):  # the whole ranking is not enough: the best tried
        n = max(tried, key=lambda n: (-search.shortfall(tried[n]), tried[n], -n))
        return ranked[:n], tried[n]
    while k - lo > 1:
        mid = (lo + k) // 2
        lo, k = (lo, mid) if search.within(measure(mid)) else (mid, k)
    return ranked[:k], tried[k]
