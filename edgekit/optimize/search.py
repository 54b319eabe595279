"""The search loop, guided by the measured per-layer sensitivity (not a grid).

1. Structure (channels, what shrinks the flashed file): start from the most aggressive point,
   every channel group at the largest ``channel_levels`` value; while it misses a constraint,
   back off the most sensitive group still narrowed (to whole). Then, least sensitive first,
   binary-search each backed-off group's level back up while the constraints hold.
2. Weights (prune + cluster, what shrinks the gzip'd file) on that structure: one intensity knob,
   binary-searched: rung 1 clusters only (the first of ``cluster_levels``), rung i > 1 adds
   sparsity ``prune_levels[i - 2]`` with shared values ``cluster_levels[i - 2]`` (the more
   prune-sensitive half of the layers one sparsity level lower).
3. Polish: with the chosen prune + cluster on, bisect each group's fraction further between the
   level that holds and the next one that failed, in rounds (least sensitive first), until the
   two are one channel apart or the budget ends.
4. Bit-width: the best point again with the other quantize mode (PTQ instead of QAT).
5. Leftover time, until the budget ends or nothing is left to try, each round the first that applies:
   the winner's next weights rung (same structure and fine-tunes); else the near miss that would
   beat the winner (it missed only the accuracy limit, by at most that limit again), re-run with
   every fine-tune twice as long (up to ``max_tune`` times the configured epochs; the shortest
   fine-tunes are retried first); a re-run that holds climbs its own weights rungs, same fine-tunes,
   until one misses. A candidate that would not fit in the time left is skipped, and cheaper ones
   still run (in phases 1-4 it ends the search: what follows builds on it).

Every evaluated candidate is kept; the winner is the smallest that meets every constraint
(:func:`order`: raw bytes, those within ``size_tolerance`` of the smallest counting as equal, then
gzip'd bytes, latency, accuracy)."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

from edgekit.optimize.config import OptimizeConfig
from edgekit.optimize.evaluate import OutOfBudget
from edgekit.optimize.sensitivity import LayerSensitivity
from edgekit.optimize.space import Candidate, Space

Evaluate = Callable[[Candidate], dict[str, Any]]
MIN_CLUSTER_WEIGHTS = 4  # a layer is clustered into k values only when it has k x this many weights


def guarded_drop(result: Mapping[str, Any]) -> float:
    """The validation drop the accuracy limit is held to: the measured drop plus the candidate's margin."""
    return result["val_drop_pt"] + result.get("margin_pt", 0.0)


def missed(result: Mapping[str, Any], config: OptimizeConfig) -> list[str]:
    """The constraints ``result`` misses, one phrase each (empty: it meets them all)."""
    if result.get("failed"):
        return [f"failed: {result['failed']}"]
    out = []
    margin = result.get("margin_pt", 0.0)
    if guarded_drop(result) > config.max_accuracy_drop + 1e-9:
        drop = result["val_drop_pt"]
        out.append(f"accuracy drop {drop:.2f} pt > {config.max_accuracy_drop:g} pt" if not margin else
                   f"accuracy drop {drop:+.2f} pt with its {margin:.2f} pt margin for validation noise is "
                   f"{guarded_drop(result):.2f} pt > {config.max_accuracy_drop:g} pt")
    if config.max_size is not None and result["raw_bytes"] > config.max_size:
        out.append(f"size {result['raw_bytes']:,} B > {config.max_size:,} B")
    if config.max_latency_us is not None and result["latency_us"] > config.max_latency_us:
        out.append(f"latency {result['latency_us']:.1f} us > {config.max_latency_us:g} us")
    return out


def shortfall(result: Mapping[str, Any], config: OptimizeConfig) -> float:
    """How far ``result`` is from meeting the constraints (0 when it meets them): relative excesses summed."""
    s = max(0.0, guarded_drop(result) - config.max_accuracy_drop) / max(config.max_accuracy_drop, 0.1)
    if config.max_size is not None:
        s += max(0.0, result["raw_bytes"] / config.max_size - 1.0)
    if config.max_latency_us is not None:
        s += max(0.0, result["latency_us"] / config.max_latency_us - 1.0)
    return s


def order(results: Sequence[Mapping[str, Any]], tolerance: float) -> list[Mapping[str, Any]]:
    """``results`` smallest first: raw bytes (what is flashed), those within ``tolerance`` of the
    smallest counting as equally small; then gzip'd bytes (what is downloaded), latency, accuracy."""
    if not results:
        return []
    band = min(r["raw_bytes"] for r in results) * (1.0 + tolerance)
    return sorted(results, key=lambda r: (max(r["raw_bytes"], band), r["gzip_bytes"], r["raw_bytes"],
                                          r["latency_us"], -r["val_accuracy"]))


def beats(r: Mapping[str, Any], other: Mapping[str, Any], tolerance: float) -> bool:
    """True when ``r`` comes before ``other`` in :func:`order`."""
    return r is not other and order([other, r], tolerance)[0] is r


def best(results: Sequence[Mapping[str, Any]], config: OptimizeConfig) -> tuple[Mapping[str, Any] | None, bool]:
    """``(winner, met)``: the smallest candidate meeting every constraint, else the one nearest to them."""
    results = [r for r in results if not r.get("failed")]
    if not results:
        return None, False
    ok = [r for r in results if not missed(r, config)]
    if ok:
        return order(ok, config.size_tolerance)[0], True
    return min(results, key=lambda r: (shortfall(r, config), r["raw_bytes"])), False


def near_miss(r: Mapping[str, Any], config: OptimizeConfig) -> bool:
    """True when ``r`` meets every constraint but accuracy, and misses that by at most the limit again."""
    if r.get("failed") or not missed(r, config) or missed(r, config.replace(max_accuracy_drop=1e9)):
        return False
    return guarded_drop(r) <= 2 * config.max_accuracy_drop + 1e-9


def hint(evaluate: Evaluate, candidates: Sequence[Candidate]) -> None:
    """Tell the evaluator which candidates the search may ask next, most likely first (workers start
    them ahead of their turn; in-process nothing happens). Decisions never depend on it."""
    prefetch = getattr(evaluate, "prefetch", None)
    if prefetch is not None:
        prefetch(list(candidates))


def bisect_level(make: Callable[[int], Candidate], lo: int, hi: int, hi_known_bad: bool,
                 evaluate: Evaluate, ok: Callable[[Mapping[str, Any]], bool]) -> int:
    """The highest level in ``[lo, hi]`` whose candidate is ``ok``, given ``lo`` is (binary search;
    ``hi_known_bad``: ``hi`` was measured to fail in this context). Each step hints both of the
    next step's candidates (the one after a pass, then the one after a miss)."""
    top = hi if hi_known_bad else hi + 1
    while top - lo > 1:
        mid = (lo + top) // 2
        hint(evaluate, [make(v) for v in dict.fromkeys([mid, (mid + top) // 2, (lo + mid) // 2])
                        if lo < v < top])
        if ok(evaluate(make(mid))):
            lo = mid
        else:
            top = mid
    return lo


def run_search(evaluate: Evaluate, space: Space, sensitivity: Sequence[LayerSensitivity], config: OptimizeConfig,
               narrowed_params: Callable[[Mapping[str, float]], Mapping[str, int]],
               progress: Callable[[str], None] | None = None) -> None:
    """Evaluate candidates until the search ends or the budget does (results live in the evaluator's state)."""
    say = progress or (lambda m: None)
    try:
        _search(evaluate, space, sensitivity, config, narrowed_params, say)
    except OutOfBudget as e:
        say(f"budget spent: the next candidate ({e}) would not fit in the time left")


def _search(evaluate: Evaluate, space: Space, sensitivity: Sequence[LayerSensitivity], config: OptimizeConfig,
            narrowed_params: Callable[[Mapping[str, float]], Mapping[str, int]], say: Callable[[str], None]) -> None:
    seen: dict[str, Mapping[str, Any]] = {}
    asked: dict[str, Candidate] = {}

    def ev(c: Candidate) -> Mapping[str, Any]:
        new = c.key not in seen
        r = evaluate(c)
        asked[c.key], seen[c.key] = c, r
        lead, met = best(list(seen.values()), config)
        if new and met:  # the running answer, after each candidate
            n = sum(not missed(x, config) for x in seen.values())
            say(f"  best so far: {lead['key']}, {lead['raw_bytes']:,} B raw / {lead['gzip_bytes']:,} B gzip "
                f"({n} of {len(seen)} meet the limits)")
        return r

    ev.prefetch = getattr(evaluate, "prefetch", None)  # type: ignore[attr-defined]  # hints pass through

    ok = lambda r: not missed(r, config)
    quantize = config.quantize_modes[0]
    ladder = (0.0, *sorted(config.channel_levels))
    top = len(ladder) - 1
    groups = [s.layer for s in sensitivity if s.layer in space.narrowable]  # most sensitive first
    level = {g: top for g in groups}

    def structure(lv: Mapping[str, int], q: str = quantize) -> Candidate:
        return Candidate.of(channels={g: ladder[i] for g, i in lv.items()}, quantize=q)

    # 1. structure: back off the most sensitive groups until the constraints hold, then bisect them back up
    backed: list[str] = []
    if groups:
        say(f"phase 1: channels, most aggressive first; groups by sensitivity: {', '.join(groups)}")
        hint(evaluate, [structure({**level, **{g: 0 for g in groups[:j]}}) for j in range(len(groups) + 1)])
        r = ev(structure(level))
        for g in groups:
            if ok(r):
                break
            level[g] = 0
            backed.append(g)
            r = ev(structure(level))
        if not ok(r):
            say("phase 1: no channel setting meets the constraints")
            return
        for i, g in enumerate(reversed(backed)):  # least sensitive first
            def make(v: int, g: str = g) -> Candidate:
                return structure({**level, g: v})
            level[g] = bisect_level(make, 0, top, i == 0, ev, ok)
    # 2. weights: prune + cluster on the chosen structure, one intensity knob
    by_prune = sorted((s for s in sensitivity if s.layer in space.prunable),
                      key=lambda s: (s.prune_drop_pt if s.prune_drop_pt is not None else 0.0, s.layer))
    sensitive = {s.layer for s in by_prune[len(by_prune) - len(by_prune) // 2:]}  # the more sensitive half
    frac = {g: ladder[v] for g, v in level.items()}

    rungs = len(config.prune_levels) + 1
    rung: dict[str, int] = {}  # candidate key -> its weights rung (a structure alone: 0)

    def weights(i: int, fr: Mapping[str, float], q: str = quantize, tune: int = 1) -> Candidate:
        """Rung ``i`` of the weights knob on structure ``fr`` (0: none; 1: cluster only; then prune + cluster)."""
        if i == 0:
            c = Candidate.of(channels=fr, quantize=q, tune=tune)
            rung[c.key] = 0
            return c
        params = narrowed_params({g: v for g, v in fr.items() if v})
        p = i - 1  # prune rung: 0 = none
        prune = {s.layer: config.prune_levels[p - 1 - (s.layer in sensitive)] for s in by_prune
                 if p - 1 - (s.layer in sensitive) >= 0}
        k = config.cluster_levels[min(max(p, 1), len(config.cluster_levels)) - 1]
        cluster = {l: k for l in space.clusterable if params.get(l, 0) >= MIN_CLUSTER_WEIGHTS * k}
        c = Candidate.of(channels=fr, prune=prune, cluster=cluster, quantize=q, tune=tune)
        rung[c.key] = i
        return c

    say(f"phase 2: cluster, then prune + cluster, on {structure(level).key}")
    intensity = bisect_level(lambda i: weights(i, frac), 0, rungs, False, ev, ok)
    # 3. polish: bisect each group's fraction further (between what holds and the next step that failed),
    #    with the chosen prune + cluster, in rounds, least sensitive first, until one channel apart
    fail = {g: ladder[level[g] + 1] if level[g] < top else None for g in groups}
    say("phase 3: finer channel steps per group with the chosen prune + cluster, least sensitive first")
    while True:
        open_ = [g for g in reversed(groups) if fail[g] is not None and
                 round(fail[g] * space.channels.get(g, 0)) - round(frac[g] * space.channels.get(g, 0)) > 1]
        if not open_:
            break
        for i, g in enumerate(open_):
            trial = {**frac, g: round((frac[g] + fail[g]) / 2, 4)}
            hint(evaluate, [weights(intensity, {**frac, h: round((frac[h] + fail[h]) / 2, 4)}) for h in open_[i:]])
            if ok(ev(weights(intensity, trial))):
                frac = trial
            else:
                fail[g] = trial[g]
    # 4. bit-width: the chosen point with each other quantize mode
    hint(evaluate, [weights(intensity, frac, q) for q in config.quantize_modes[1:]])
    for q in config.quantize_modes[1:]:
        say(f"phase 4: {q} instead of {quantize}")
        ev(weights(intensity, frac, q))
    # 5. leftover time: climb the winner's weights rungs; re-run near misses that would beat it, fine-tunes x2
    tol = config.size_tolerance

    def rung_of(c: Candidate) -> int | None:
        """``c``'s weights rung (a structure alone: 0; None: not a point of the knob, e.g. the baseline)."""
        return rung.get(c.key, None if c.baseline or c.prune or c.cluster else 0)

    def longer(c: Candidate) -> Candidate:
        """``c`` with every fine-tune twice as long."""
        return dataclasses.replace(c, tune=c.tune * 2)

    skipped: set[str] = set()  # candidates that did not fit in the time left (they never will: it only shrinks)

    def fits(c: Candidate) -> Mapping[str, Any] | None:
        """``c`` measured, or None when it would not fit in the time left (a cheaper one still may)."""
        try:
            return ev(c)
        except OutOfBudget:
            skipped.add(c.key)
            say(f"phase 5: {c.key} would not fit in the time left; looking for a cheaper one")
            return None

    def tried(c: Candidate) -> bool:
        return c.key in seen or c.key in skipped

    def climb(c: Candidate) -> None:
        """The weights rungs above ``c``'s on its structure, same quantize mode and fine-tunes, until one misses."""
        hint(evaluate, [weights(i, dict(c.channels), c.quantize, c.tune) for i in range(rung_of(c) + 1, rungs + 1)])
        for i in range(rung_of(c) + 1, rungs + 1):
            r = fits(weights(i, dict(c.channels), c.quantize, c.tune))
            if r is None or not ok(r):
                return

    say("phase 5: leftover time: the winner's next weights rung, then near misses that would beat it "
        f"with fine-tunes twice as long (up to x{config.max_tune})")
    while True:
        winner, met = best(list(seen.values()), config)
        w = asked.get(winner["key"]) if met else None
        i = rung_of(w) if w is not None else None
        if i is not None and i < rungs and not tried(weights(i + 1, dict(w.channels), w.quantize, w.tune)):
            climb(w)
            continue
        near = [seen[k] for k, c in asked.items() if c.tune * 2 <= config.max_tune and rung_of(c) is not None
                and not tried(longer(c)) and near_miss(seen[k], config)
                and (not met or beats(seen[k], winner, tol))]
        if not near:
            if skipped:
                say(f"phase 5: done; {len(skipped)} candidate(s) did not fit in the time left")
            return
        shortest = min(asked[r["key"]].tune for r in near)  # the cheapest re-runs first, then the smallest
        ranked = order([r for r in near if asked[r["key"]].tune == shortest], tol)
        hint(evaluate, [longer(asked[r["key"]]) for r in ranked])
        c = asked[ranked[0]["key"]]
        retry = longer(c)
        rung[retry.key] = rung_of(c)
        r = fits(retry)
        if r is not None and ok(r):
            climb(retry)
