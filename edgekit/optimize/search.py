"""The search loop, guided by the measured per-layer sensitivity (not a grid).

The search asks **batches**: candidates it can decide on together, all of whose results it uses. A
batch's members and their order depend only on what the search has measured, never on the number
of workers or on which member finishes first: with one worker a batch runs one member after the
other in this process, with N workers up to N at once, and the results are read in the batch's
order. So a search with the same seed asks the same candidates and picks the same winner with any
number of workers (at a fixed ``--worker-threads``). Batch widths (a property of the search):

0. Resolution (what makes a backbone faster; :mod:`edgekit.compress.resolution`), when the model's
   features end in global pooling: the stem at twice its stride, alone, with every fine-tune
   ``RESOLUTION_TUNES`` (4, 2, 1) times as long, in one batch (longest first: a fine-tune at half
   resolution costs about a quarter); the shortest that holds the limits is kept, with its fine-tune
   length, by every later candidate. When none holds, none keeps it.

1. Structure (channels, what shrinks the flashed file): start from the most aggressive point,
   every channel group at the largest ``channel_levels`` value, and back off the most sensitive
   groups (to whole) until the constraints hold (a model with more than ``TIERS`` (6) groups, such
   as a MobileNet, is searched in 6 tiers of consecutive sensitivity ranks, each tier one knob and
   its groups narrowed alike: a "group" below is then a tier): the back-off sequence (none, the
   most sensitive group, the two most sensitive, ...) is asked ``BACKOFF`` (4) steps at a time, and the first step
   that holds is taken (as asking them one by one would). Then, least sensitive first, each
   backed-off group's level is searched back up (a k-ary search, :func:`kary_level`: ``PROBES`` (4)
   levels at once, all of them when at most one more is open; the highest that holds is kept).
2. Weights (prune + cluster, what shrinks the gzip'd file) on that structure: one intensity knob,
   k-ary searched the same way (the default 5 rungs in one batch): rung 1 clusters only (the first of
   ``cluster_levels``), rung i > 1 adds sparsity ``prune_levels[i - 2]`` with shared values
   ``cluster_levels[i - 2]`` (the more prune-sensitive half of the layers one sparsity level lower).
3. Polish: with the chosen prune + cluster on, in rounds until every group's level that holds and the
   next one that failed are one channel apart: a batch halves every open group's step at once, each on
   the same point (width: the open groups); a trial that misses closes its group's step; when several
   held, a second batch asks them together, cumulatively in the order least sensitive first (width:
   the holders less one), and the longest prefix that holds is taken (the others stay open). A single
   open group is split in thirds instead (2 probes, the highest that holds kept).
4. Bit-width, with the first climb: the polished point with each other quantize mode (PTQ instead of
   QAT), in one batch with its next ``CLIMB`` (2) weights rungs.
5. Leftover time, until the budget ends or nothing is left to try, one batch per round: the winner's
   next ``CLIMB`` (2) weights rungs (same structure, quantize mode and fine-tunes) while they hold,
   the next rungs of re-runs that held, and the near misses that would beat the winner (they missed
   only the accuracy limit, by at most that limit again), ``NEAR`` (2) at a time, re-run with every
   fine-tune twice as long (up to ``max_tune`` times the configured epochs; the shortest fine-tunes
   first, the smallest among them).

The budget: before a batch starts, the evaluator keeps, in the batch's order, the members whose
estimated cost still fits the time left when spread over the workers (a deterministic trim by
estimated cost, not by what finishes first). In phases 1-3 a trimmed batch ends the search (what
follows builds on it) after its measured members are kept; in phases 4-5 a trimmed candidate is
skipped for good and cheaper ones still run.

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
Ask = Callable[[Sequence[Candidate]], list]
MIN_CLUSTER_WEIGHTS = 4  # a layer is clustered into k values only when it has k x this many weights
BACKOFF = 4  # back-off steps of phase 1 asked at once
PROBES = 4  # levels a k-ary search asks at once (all that are open when at most one more)
CLIMB = 2  # weights rungs above a candidate asked at once
NEAR = 2  # near misses re-run at once
RESOLUTION_TUNES = (4, 2, 1)  # fine-tune multiples half resolution is asked with (longest first: one batch)
TIERS = 6  # channel knobs at most: a deeper model's groups are searched in this many tiers of sensitivity
WIDTHS = {"backoff": BACKOFF, "probes": PROBES, "climb": CLIMB, "near": NEAR}  # benchmarks/optimize_scale.py


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




def evaluate_batch(evaluate: Evaluate, candidates: Sequence[Candidate]) -> list[Mapping[str, Any] | None]:
    """``candidates`` measured as one batch, results in their order (None: trimmed by the budget):
    the evaluator's ``many`` (workers run the members at once), else one after another."""
    many = getattr(evaluate, "many", None)
    if many is not None:
        return many(list(candidates))
    out: list[Mapping[str, Any] | None] = []
    for c in candidates:
        try:
            out.append(evaluate(c))
        except OutOfBudget:
            out.append(None)
    return out


def spread(values: Sequence[int], k: int) -> list[int]:
    """``k`` of ``values`` (sorted), evenly spaced: they split the rest into ``k + 1`` near-equal runs."""
    n = len(values)
    if n <= k:
        return list(values)
    return list(dict.fromkeys(values[min(n - 1, round((i + 1) * (n + 1) / (k + 1)) - 1)] for i in range(k)))


def tiers(groups: Sequence[str], n: int = TIERS) -> dict[str, tuple[str, ...]]:
    """``groups`` (most sensitive first) as at most ``n`` runs of consecutive ranks, their sizes within
    one of each other, each keyed by its first (most sensitive) group: each run is one knob of the
    search, so a deep model's dozens of channel groups cost as many batches as ``n`` groups."""
    size, extra = divmod(len(groups), max(1, n))
    out, at = {}, 0
    for i in range(min(max(1, n), len(groups))):
        m = size + (i < extra)
        out[groups[at]] = tuple(groups[at:at + m])
        at += m
    return out


def kary_level(make: Callable[[int], Candidate], lo: int, hi: int, hi_known_bad: bool, ask: Ask,
               ok: Callable[[Mapping[str, Any]], bool], width: int = PROBES) -> int:
    """The highest level in ``[lo, hi]`` whose candidate is ``ok``, given ``lo`` is (``hi_known_bad``:
    ``hi`` was measured to fail in this context): a k-ary search, each round one batch of ``width``
    levels spread over the open ones (all of them when at most ``width + 1`` are open); the highest
    that holds becomes ``lo``, the lowest above it that failed the new top."""
    top = hi if hi_known_bad else hi + 1
    while top - lo > 1:
        open_ = list(range(lo + 1, top))
        probes = open_ if len(open_) <= width + 1 else spread(open_, width)
        results = ask([make(v) for v in probes])
        lo = max((v for v, r in zip(probes, results) if ok(r)), default=lo)
        top = min((v for v in probes if v > lo), default=top)
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
    skipped: set[str] = set()  # candidates trimmed by the budget (never asked again: the time left only shrinks)

    def ask(cands: Sequence[Candidate], ends: bool = True) -> list[Mapping[str, Any] | None]:
        """One batch (duplicates asked once, skipped ones not at all), results in its order. A member
        the budget trimmed is None and skipped from then on; with ``ends`` it ends the search
        (OutOfBudget) once the measured members are kept."""
        batch = list({c.key: c for c in cands if c.key not in skipped}.values())
        got = dict(zip((c.key for c in batch), evaluate_batch(evaluate, batch))) if batch else {}
        new = 0
        for c in batch:
            r = got[c.key]
            if r is None:
                skipped.add(c.key)
                continue
            new += c.key not in seen
            asked[c.key], seen[c.key] = c, r
        lead, met = best(list(seen.values()), config)
        if new and met:  # the running answer, after each batch
            n = sum(not missed(x, config) for x in seen.values())
            say(f"  best so far: {lead['key']}, {lead['raw_bytes']:,} B raw / {lead['gzip_bytes']:,} B gzip "
                f"({n} of {len(seen)} meet the limits)")
        trimmed = [c.key for c in batch if got[c.key] is None]
        if trimmed and ends:
            raise OutOfBudget(trimmed[0])
        if trimmed:
            say(f"  {len(trimmed)} candidate(s) would not fit in the time left ({trimmed[0]}"
                f"{', ...' if len(trimmed) > 1 else ''}); looking for cheaper ones")
        return [got.get(c.key) for c in cands]

    ok = lambda r: r is not None and not missed(r, config)
    quantize = config.quantize_modes[0]
    ladder = (0.0, *sorted(config.channel_levels))
    top = len(ladder) - 1
    members = tiers([s.layer for s in sensitivity if s.layer in space.narrowable])  # most sensitive first
    groups = list(members)  # the knobs: one per tier (a tier is one group unless the model has many)
    level = {g: top for g in groups}

    def expand(fr: Mapping[str, float]) -> dict[str, float]:
        """Fractions per tier as fractions per channel group (a group not a tier's name stands for itself)."""
        return {m: v for t, v in fr.items() for m in members.get(t, (t,))}

    def channels_of(g: str) -> int:
        """Filters/units of tier ``g``'s narrowest group: its polish stops when that one is a channel apart."""
        return min(space.channels.get(m, 0) for m in members.get(g, (g,)))

    ds, t0 = 1, 1  # the stem's stride multiple and the fine-tune multiple every later candidate keeps (phase 0)

    def structure(lv: Mapping[str, int], q: str = quantize) -> Candidate:
        return Candidate.of(channels=expand({g: ladder[i] for g, i in lv.items()}), quantize=q, downsample=ds,
                            tune=t0)

    # 0. resolution: the stem at twice its stride, alone, at a few fine-tune lengths in one batch; the shortest
    #    that holds is kept (with its fine-tune length) by every later candidate
    if space.downsample and config.downsample:
        tunes = [t for t in RESOLUTION_TUNES if t <= config.max_tune]
        say("phase 0: resolution: the stem at twice its stride (every later layer on a quarter of the positions), "
            f"fine-tunes x{', x'.join(map(str, sorted(tunes)))}")
        results = ask([Candidate.of(quantize=quantize, downsample=2, tune=t) for t in tunes])
        held = [t for t, r in zip(tunes, results) if ok(r)]
        if held:
            ds, t0 = 2, min(held)
        else:
            say("phase 0: half resolution misses the limits; the search keeps the model's resolution")

    # 1. structure: back off the most sensitive groups until the constraints hold (BACKOFF steps per batch,
    #    the first that holds taken), then k-ary search each backed-off group's level back up
    if groups:
        tiered = "" if all(len(m) == 1 for m in members.values()) else \
            f" in {len(groups)} tiers of {', '.join(str(len(m)) for m in members.values())} groups"
        say(f"phase 1: channels, most aggressive first; groups by sensitivity{tiered}: {', '.join(groups)}")
        steps = [structure({**level, **{g: 0 for g in groups[:j]}}) for j in range(len(groups) + 1)]
        held = None
        for j in range(0, len(steps), BACKOFF):
            results = ask(steps[j:j + BACKOFF])
            held = next((j + i for i, r in enumerate(results) if ok(r)), None)
            if held is not None:
                break
        if held is None:
            say("phase 1: no channel setting meets the constraints")
            return
        backed = groups[:held]
        level.update({g: 0 for g in backed})
        for i, g in enumerate(reversed(backed)):  # least sensitive first
            def make(v: int, g: str = g) -> Candidate:
                return structure({**level, g: v})
            level[g] = kary_level(make, 0, top, i == 0, ask, ok)  # the first: whole held, at top it missed
    # 2. weights: prune + cluster on the chosen structure, one intensity knob
    by_prune = sorted((s for s in sensitivity if s.layer in space.prunable),
                      key=lambda s: (s.prune_drop_pt if s.prune_drop_pt is not None else 0.0, s.layer))
    sensitive = {s.layer for s in by_prune[len(by_prune) - len(by_prune) // 2:]}  # the more sensitive half
    frac = {g: ladder[v] for g, v in level.items()}

    rungs = len(config.prune_levels) + 1
    rung: dict[str, int] = {}  # candidate key -> its weights rung (a structure alone: 0)

    def weights(i: int, fr: Mapping[str, float], q: str = quantize, tune: int | None = None) -> Candidate:
        """Rung ``i`` of the weights knob on structure ``fr`` (0: none; 1: cluster only; then prune + cluster)."""
        fr, tune = expand(fr), tune or t0
        if i == 0:
            c = Candidate.of(channels=fr, quantize=q, tune=tune, downsample=ds)
            rung[c.key] = 0
            return c
        params = narrowed_params({g: v for g, v in fr.items() if v})
        p = i - 1  # prune rung: 0 = none
        prune = {s.layer: config.prune_levels[p - 1 - (s.layer in sensitive)] for s in by_prune
                 if p - 1 - (s.layer in sensitive) >= 0}
        k = config.cluster_levels[min(max(p, 1), len(config.cluster_levels)) - 1]
        cluster = {l: k for l in space.clusterable if params.get(l, 0) >= MIN_CLUSTER_WEIGHTS * k}
        c = Candidate.of(channels=fr, prune=prune, cluster=cluster, quantize=q, tune=tune, downsample=ds)
        rung[c.key] = i
        return c

    say(f"phase 2: cluster, then prune + cluster, on {structure(level).key}")
    intensity = kary_level(lambda i: weights(i, frac), 0, rungs, False, ask, ok)
    # 3. polish: halve every open group's step at once (same point), then the holders together, cumulatively
    fail = {g: ladder[level[g] + 1] if level[g] < top else None for g in groups}
    tol = config.size_tolerance
    say("phase 3: finer channel steps, every group at once, with the chosen prune + cluster")
    while True:
        open_ = [g for g in reversed(groups) if fail[g] is not None and  # least sensitive first
                 round(fail[g] * channels_of(g)) - round(frac[g] * channels_of(g)) > 1]
        if not open_:
            break
        if len(open_) == 1:  # one group left: a k-ary step (its interval in thirds), the highest that holds
            g = open_[0]
            n0, n1 = (round(v * channels_of(g)) for v in (frac[g], fail[g]))
            probes = [round(frac[g] + (fail[g] - frac[g]) * i / 3, 4) for i in (1, 2)] if n1 - n0 > 2 else \
                [round((frac[g] + fail[g]) / 2, 4)]
            results = ask([weights(intensity, {**frac, g: v}) for v in probes])
            frac = {**frac, g: max((v for v, r in zip(probes, results) if ok(r)), default=frac[g])}
            fail[g] = min((v for v in probes if v > frac[g]), default=fail[g])
            continue
        mid = {g: round((frac[g] + fail[g]) / 2, 4) for g in open_}
        results = ask([weights(intensity, {**frac, g: mid[g]}) for g in open_])
        holders = [g for g, r in zip(open_, results) if ok(r)]
        for g, r in zip(open_, results):
            if not ok(r):
                fail[g] = mid[g]  # it missed on this point: it misses on a narrower one too
        prefixes = [{**frac, **{h: mid[h] for h in holders[:j]}} for j in range(1, len(holders) + 1)]
        if len(prefixes) > 1:
            together = ask([weights(intensity, fr) for fr in prefixes[1:]])
            prefixes = prefixes[:1] + [fr for fr, r in zip(prefixes[1:], together) if ok(r)]
        if prefixes:
            frac = prefixes[-1]  # the most groups taken together that held (a holder left out stays open)
    # 4. bit-width: the chosen point with each other quantize mode, in one batch with its first climb

    def rung_of(c: Candidate) -> int | None:
        """``c``'s weights rung (a structure alone: 0; None: not a point of the knob, e.g. the baseline)."""
        return rung.get(c.key, None if c.baseline or c.prune or c.cluster else 0)

    def longer(c: Candidate) -> Candidate:
        """``c`` with every fine-tune twice as long."""
        return dataclasses.replace(c, tune=c.tune * 2)

    def tried(c: Candidate) -> bool:
        return c.key in seen or c.key in skipped

    def next_rungs(c: Candidate) -> list[Candidate]:
        """The next ``CLIMB`` weights rungs above ``c`` on its structure, same quantize mode and fine-tunes."""
        i = rung_of(c)
        return [weights(j, dict(c.channels), c.quantize, c.tune) for j in range(i + 1, min(i + CLIMB, rungs) + 1)]

    def climb(cs: Sequence[Candidate], first: Sequence[Candidate] = ()) -> None:
        """The weights rungs above each of ``cs``, ``CLIMB`` per candidate in each batch (with ``first``
        in the first one), until one misses or none is left."""
        while cs or first:
            steps = [next_rungs(c) for c in cs]
            results = ask([*first, *(n for ns in steps for n in ns)], ends=False)[len(first):]
            first, cs, at = (), [], 0
            for ns in steps:
                rs, at = results[at:at + len(ns)], at + len(ns)
                if ns and all(ok(r) for r in rs) and rung_of(ns[-1]) < rungs:
                    cs.append(ns[-1])

    point = weights(intensity, frac)
    others = [weights(intensity, frac, q) for q in config.quantize_modes[1:]]
    for q in config.quantize_modes[1:]:
        say(f"phase 4: {q} instead of {quantize}, with the next weights rungs of {point.key}")
    climb([point] if intensity < rungs else [], first=others)
    # 5. leftover time: climb the winner's weights rungs; re-run near misses that would beat it, fine-tunes x2
    say("phase 5: leftover time: the winner's next weights rungs, near misses that would beat it with fine-tunes "
        f"twice as long (up to x{config.max_tune}), and the rungs of re-runs that held, a batch each round")
    climbers: list[Candidate] = []  # re-runs (or rungs of theirs) that held: their next rungs come next
    while True:
        winner, met = best(list(seen.values()), config)
        w = asked.get(winner["key"]) if met else None
        i = rung_of(w) if w is not None else None
        if i is not None and i < rungs and not tried(weights(i + 1, dict(w.channels), w.quantize, w.tune)):
            climbers = [w, *climbers]
        chains = [[n for n in next_rungs(c) if not tried(n)] for c in dict.fromkeys(climbers)]
        chains = [ch for ch in chains if ch]
        near = [seen[k] for k, c in asked.items() if c.tune * 2 <= config.max_tune and rung_of(c) is not None
                and not tried(longer(c)) and near_miss(seen[k], config)
                and (not met or beats(seen[k], winner, tol))]
        retries = []
        if near:
            shortest = min(asked[r["key"]].tune for r in near)  # the cheapest re-runs first, then the smallest
            ranked = [asked[r["key"]] for r in order([r for r in near if asked[r["key"]].tune == shortest], tol)]
            retries = [longer(c) for c in ranked[:NEAR]]
            for c, retry in zip(ranked, retries):
                rung[retry.key] = rung_of(c)
        if not chains and not retries:
            if skipped:
                say(f"phase 5: done; {len(skipped)} candidate(s) did not fit in the time left")
            return
        results = ask([*(n for ch in chains for n in ch), *retries], ends=False)
        got = dict(zip([n.key for ch in chains for n in ch] + [c.key for c in retries], results))
        climbers = [ch[-1] for ch in chains if all(ok(got[n.key]) for n in ch) and rung_of(ch[-1]) < rungs]
        climbers += [c for c in retries if ok(got[c.key]) and rung_of(c) < rungs]
