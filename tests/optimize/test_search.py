"""The search loop on a synthetic accuracy/size model (no TensorFlow): sensitivity-ordered back-off,
k-ary search per knob in batches, budget stop, and the winner / nearest-miss choice."""
from __future__ import annotations

import dataclasses
import math

import pytest

from edgekit.optimize.config import OptimizeConfig
from edgekit.optimize.evaluate import OutOfBudget
from edgekit.optimize.search import best, kary_level, missed, run_search
from edgekit.optimize.sensitivity import LayerSensitivity
from edgekit.optimize.space import Candidate, Space

PARAMS = {"a": 4000, "b": 2000, "c": 1000}
# drop (pt) per unit of fraction squared: "a" is the fragile layer
WEIGHT = {"a": 8.0, "b": 0.6, "c": 0.3}
SPACE = Space(("a", "b", "c"), ("a", "b", "c"), ("a", "b", "c"), PARAMS, {"a": 64, "b": 32, "c": 16})
SENS = [LayerSensitivity("a", 4000, 3.0, 2.0), LayerSensitivity("b", 2000, 0.5, 0.2),
        LayerSensitivity("c", 1000, 0.1, 0.1)]  # ranked most sensitive first, as measure() returns them


class Fake:
    """Evaluates candidates with a closed-form drop and size; records the order asked."""

    def __init__(self, limit: int = 1000):
        self.asked: list[Candidate] = []
        self.limit = limit

    def __call__(self, c: Candidate) -> dict:
        if c not in self.asked:
            if len(self.asked) >= self.limit:
                raise OutOfBudget(c.key)
            self.asked.append(c)
        ch, pr = dict(c.channels), dict(c.prune)
        drop = sum(WEIGHT[k] * v * v for k, v in ch.items()) + sum(0.2 * WEIGHT[k] * v for k, v in pr.items())
        raw = 100 + sum(int(p * (1 - ch.get(k, 0.0))) for k, p in PARAMS.items())
        gz = int(raw * (1 - 0.5 * max(pr.values(), default=0.0)))
        return {"key": c.key, "val_drop_pt": drop, "val_accuracy": 0.9 - drop / 100, "raw_bytes": raw,
                "gzip_bytes": gz, "latency_us": raw / 100}


def narrowed(channels):
    return {k: int(p * (1 - channels.get(k, 0.0))) for k, p in PARAMS.items()}


def test_backs_off_the_most_sensitive_layer_first_then_bisects_it_back():
    cfg = OptimizeConfig(max_accuracy_drop=0.5, quantize_modes=("qat",))
    fake = Fake()
    run_search(fake, SPACE, SENS, cfg, narrowed)
    first, second = fake.asked[0], fake.asked[1]
    assert dict(first.channels) == {"a": 0.875, "b": 0.875, "c": 0.875}  # the most aggressive point first
    assert dict(second.channels) == {"b": 0.875, "c": 0.875}  # "a", the most sensitive, backed off first
    results = [fake(c) for c in fake.asked]
    winner, met = best(results, cfg)
    assert met and winner["val_drop_pt"] <= 0.5
    # the fragile layer keeps the most channels; the least sensitive loses the most
    w = next(c for c in fake.asked if c.key == winner["key"])
    ch = dict(w.channels)
    assert ch.get("a", 0.0) < ch.get("b", 0.0) <= ch.get("c", 0.0)
    # the back-off sequence is one batch of 4 (none, "a", "a"+"b", all whole): "a"+"b" is the first that holds
    assert [dict(c.channels) for c in fake.asked[2:4]] == [{"c": 0.875}, {}]
    # then a k-ary search per backed-off layer, least sensitive first, each one batch of every open level:
    # "b" at 0.25, 0.5, 0.75 (0.875 is known to miss), back up to 0.5 (0.75 misses: 0.57 pt); then "a" at
    # every level (all miss) and it stays whole in phase 1
    # phase 3 then bisected each fraction further with prune + cluster on (down to one channel apart)
    assert ch["c"] == 0.875 and 0.5 < ch["b"] < 0.625 and 0 < ch["a"] < 0.125
    assert winner["raw_bytes"] < fake(Candidate.of(channels={"b": 0.5, "c": 0.875}))["raw_bytes"]
    tried_b = [dict(c.channels)["b"] for c in fake.asked[4:] if "a" not in dict(c.channels) and not c.prune
               and not c.cluster and c.tune == 1]
    tried_a = [dict(c.channels)["a"] for c in fake.asked[4:] if "a" in dict(c.channels) and not c.prune
               and not c.cluster and c.tune == 1]  # phase 1 only
    assert tried_b == [0.25, 0.5, 0.75] and tried_a == [0.25, 0.5, 0.75, 0.875]
    # phase 2 ran on the chosen structure: some candidate prunes with those channels
    assert any(c.prune and dict(c.channels) == ch for c in fake.asked)
    # phase 3 tried half a step more on "b" (0.5 -> 0.625, with that prune + cluster): it missed the limit
    assert any(dict(c.channels).get("b") == 0.625 and c.prune for c in fake.asked)
    assert len(fake.asked) < 5 ** 3  # far fewer than the channel grid alone


def test_budget_stop_keeps_what_was_measured():
    fake = Fake(limit=3)
    run_search(fake, SPACE, SENS, OptimizeConfig(quantize_modes=("qat",)), narrowed)  # OutOfBudget is caught
    assert len(fake.asked) == 3


def test_nearest_miss_when_no_candidate_meets_the_constraints():
    cfg = OptimizeConfig(max_accuracy_drop=0.5, max_size=1000)
    rs = [{"key": "x", "val_drop_pt": 2.0, "val_accuracy": 0.88, "raw_bytes": 900, "gzip_bytes": 800, "latency_us": 9.0},
          {"key": "y", "val_drop_pt": 0.1, "val_accuracy": 0.9, "raw_bytes": 1100, "gzip_bytes": 900, "latency_us": 9.0}]
    winner, met = best(rs, cfg)
    assert not met and winner["key"] == "y"  # 10% over the size beats 1.5 pt over the accuracy limit
    assert missed(winner, cfg) == ["size 1,100 B > 1,000 B"]
    assert missed(rs[0], cfg) == ["accuracy drop 2.00 pt > 0.5 pt"]
    # the margin counts against the limit: 0.3 pt measured + 0.3 pt margin misses 0.5 pt
    near = dict(winner, val_drop_pt=0.3, raw_bytes=900)
    assert missed(near, cfg) == []
    assert missed(dict(near, margin_pt=0.3), cfg) == [
        "accuracy drop +0.30 pt with its 0.30 pt margin for validation noise is 0.60 pt > 0.5 pt"]


@pytest.mark.parametrize("levels", [4, 5, 20, 60])
@pytest.mark.parametrize("known_bad", [True, False])
def test_kary_level_finds_the_highest_passing_level_in_few_batches(levels, known_bad):
    for good_up_to in range(levels - 1 if known_bad else levels + 1):
        batches: list[list[int]] = []

        def ask(cands):
            batches.append([len(c.channels[0][0]) for c in cands])
            return [{"level": v} for v in batches[-1]]

        make = lambda v: Candidate.of(channels={"x" * v: 0.5})
        got = kary_level(make, 0, levels, known_bad, ask, lambda r: r["level"] <= good_up_to, width=4)
        assert got == good_up_to
        assert all(1 <= len(b) <= 5 for b in batches)  # PROBES at once, all open levels when one more
        assert len(batches) <= max(1, math.ceil(math.log(levels, 5)) + 1)
        assert all(0 < v <= levels for b in batches for v in b)


def test_the_same_batches_whatever_answers_first():
    """The search asks batches; an evaluator that measures each batch's members in another order (as
    workers finish) gets the same batches and the same winner: results are read in the batch's order."""
    from edgekit.optimize.search import WIDTHS

    cfg = OptimizeConfig(max_accuracy_drop=0.5, quantize_modes=("qat", "ptq"), max_tune=4)

    def run(reverse: bool) -> tuple[list[list[str]], str]:
        fake, batches = PruneHeavy(), []

        class Workers:
            def __call__(self, c):
                return fake(c)

            def many(self, cs):
                batches.append([c.key for c in cs])
                got = {c.key: fake(c) for c in (reversed(cs) if reverse else cs)}
                return [got[c.key] for c in cs]

        run_search(Workers(), SPACE, SENS, cfg, narrowed)
        return batches, best([fake(c) for c in fake.asked], cfg)[0]["key"]

    (b1, w1), (b2, w2) = run(False), run(True)
    assert b1 == b2 and w1 == w2
    assert max(len(b) for b in b1) > 1 and sum(len(b) for b in b1) > len(b1)  # batches, not one at a time
    assert len(b1[0]) == WIDTHS["backoff"]  # the back-off sequence first


class PruneHeavy(Fake):
    """Clustering costs 0.3 pt and saves 20% gzip'd, pruning 2 pt per unit of sparsity; a fine-tune twice as
    long halves the drop."""

    def __call__(self, c: Candidate) -> dict:
        r = super().__call__(c)
        ch, pr = dict(c.channels), dict(c.prune)
        drop = sum(WEIGHT[k] * v * v for k, v in ch.items()) + (0.3 if c.cluster else 0.0) + \
            2.0 * max(pr.values(), default=0.0)
        return dict(r, val_drop_pt=drop / c.tune, val_accuracy=0.9 - drop / c.tune / 100,
                    gzip_bytes=int(r["gzip_bytes"] * (0.8 if c.cluster else 1.0)))


def test_weights_rungs_cluster_alone_first_and_leftover_time_buys_longer_fine_tunes():
    cfg = OptimizeConfig(max_accuracy_drop=0.5, quantize_modes=("qat",), max_tune=4)
    fake = PruneHeavy()
    run_search(fake, SPACE, SENS, cfg, narrowed)
    weights = [c for c in fake.asked if c.cluster or c.prune]
    assert weights, "phase 2 asked no prune/cluster candidate"
    # rung 1 is clustering alone (32 values, the first cluster level), no sparsity
    alone = [c for c in weights if c.cluster and not c.prune]
    assert alone and {v for _, v in alone[0].cluster} == {32}
    # phase 5 climbed the winner's rungs: its next rung (same structure and fine-tunes) was measured and missed
    results = [fake(c) for c in fake.asked]
    winner, met = best(results, cfg)
    w = next(c for c in fake.asked if c.key == winner["key"])
    assert met and w.tune > 1  # leftover time bought the winner its longer fine-tunes
    heavier = lambda c: (bool(c.cluster), sum(dict(c.prune).values())) > (bool(w.cluster), sum(dict(w.prune).values()))
    above = [c for c in fake.asked if c.channels == w.channels and c.tune == w.tune and c.quantize == w.quantize
             and heavier(c)]
    assert above and all(fake(c)["val_drop_pt"] > 0.5 for c in above)
    assert max(c.tune for c in fake.asked) == cfg.max_tune  # near misses re-run up to max_tune, never beyond
    cc = w.compress_config(cfg)
    assert (cc.cluster_epochs, cc.qat_epochs) == (w.tune * cfg.cluster_epochs, w.tune * cfg.qat_epochs)


def test_leftover_time_retries_near_misses_smaller_than_the_winner_with_longer_fine_tunes():
    from edgekit.optimize.search import beats, near_miss

    cfg = OptimizeConfig(max_accuracy_drop=0.5, quantize_modes=("qat",), max_tune=4)
    fake = PruneHeavy()
    run_search(fake, SPACE, SENS, cfg, narrowed)
    once = {c.key: fake(c) for c in fake.asked if c.tune == 1}
    retried = [c for c in fake.asked if c.tune == 2 and dataclasses.replace(c, tune=1).key in once]
    assert retried, "no near miss was re-run"
    for c in retried:  # each was a near miss: accuracy only, by at most the limit again
        assert near_miss(once[dataclasses.replace(c, tune=1).key], cfg)
    # a structure (channels only) that holds after the retry gets its weights rungs, fine-tunes x2 too
    held = [c for c in retried if not (c.prune or c.cluster) and fake(c)["val_drop_pt"] <= 0.5]
    assert held and all(any(o.tune == 2 and o.channels == c.channels and o.cluster for o in fake.asked)
                        for c in held)
    results = [fake(c) for c in fake.asked]
    winner, met = best(results, cfg)
    # longer fine-tunes let a smaller candidate through: its structure held at x2, clustering on it was a
    # near miss at x2 and held at x4
    assert met and winner["key"].endswith("x4 epochs")
    w = Candidate.from_dict(_cand(fake, winner))
    assert near_miss(fake(dataclasses.replace(w, tune=2)), cfg)
    assert not missed(fake(Candidate.of(channels=dict(w.channels), tune=2)), cfg)
    # nothing that would beat the winner is left as an untried near miss
    assert not [k for k, r in once.items() if near_miss(r, cfg) and beats(r, winner, cfg.size_tolerance)
                and k not in {dataclasses.replace(c, tune=1).key for c in retried}]


def test_winner_is_the_smallest_raw_then_gzip_within_the_size_tolerance():
    from edgekit.optimize.search import beats, order

    def r(key, raw, gz, lat=9.0, acc=0.9):
        return {"key": key, "raw_bytes": raw, "gzip_bytes": gz, "latency_us": lat, "val_accuracy": acc,
                "val_drop_pt": 0.1}

    a, b, c = r("a", 29040, 20026), r("b", 30320, 10541), r("c", 31000, 9000)  # c is 6.7% above a
    assert [x["key"] for x in order([a, b, c], 0.05)] == ["b", "a", "c"]  # b: 4.4% larger raw, half the gzip
    assert [x["key"] for x in order([a, b, c], 0.0)] == ["a", "b", "c"]  # no tolerance: raw bytes alone
    assert best([a, b, c], OptimizeConfig())[0] is b
    assert best([a, b, c], OptimizeConfig(size_tolerance=0))[0] is a
    assert beats(b, a, 0.05) and not beats(a, b, 0.05) and not beats(c, a, 0.05) and not beats(a, a, 0.05)
    # equal sizes: lower latency, then higher accuracy
    assert order([r("x", 100, 50, lat=2.0), r("y", 100, 50, lat=1.0)], 0.05)[0]["key"] == "y"
    assert order([r("x", 100, 50, acc=0.8), r("y", 100, 50, acc=0.9)], 0.05)[0]["key"] == "y"
    with pytest.raises(Exception, match="size_tolerance must be a non-negative number"):
        OptimizeConfig(size_tolerance=-0.1)


def _cand(fake: Fake, result: dict) -> dict:
    return next(c for c in fake.asked if c.key == result["key"]).to_dict()


def test_near_miss_is_accuracy_only_and_within_the_limit_again():
    from edgekit.optimize.search import near_miss

    cfg = OptimizeConfig(max_accuracy_drop=0.5, max_size=1000)
    r = {"val_drop_pt": 0.6, "margin_pt": 0.3, "raw_bytes": 900, "gzip_bytes": 500, "latency_us": 1.0}
    assert near_miss(r, cfg)  # 0.9 <= 2 x 0.5
    assert not near_miss(dict(r, val_drop_pt=0.8), cfg)  # 1.1 > 1.0: too far
    assert not near_miss(dict(r, raw_bytes=1200), cfg)  # misses the size too
    assert not near_miss(dict(r, val_drop_pt=0.1), cfg)  # meets everything: not a miss
    assert not near_miss({"failed": "boom"}, cfg)


def test_the_winners_recipe_keeps_its_longer_fine_tunes(tmp_path):
    """A winner found in phase 5/6 (fine-tunes x2) is rebuilt by `edgekit run` with those epochs."""
    import yaml

    from edgekit.optimize.api import _recipe_yaml

    cfg = OptimizeConfig(quantize_modes=("qat",))
    cand = Candidate.of(channels={"conv1": 0.5}, cluster={"conv2": 32}, tune=2)
    assert Candidate.from_dict(cand.to_dict()) == cand
    assert Candidate.from_dict(Candidate(baseline=True).to_dict()) == Candidate(baseline=True)
    report = {"winner": {"key": cand.key, "candidate": cand.to_dict()}}
    data = {"spec": "digits", "seed": 0, "test_split": 0.2, "val_split": 0.1, "limit": None, "preprocess": "unit"}
    model = tmp_path / "m.keras"
    model.write_bytes(b"")
    c = yaml.safe_load(_recipe_yaml(report, cfg, data, model))["compress"]
    assert (c["channels_epochs"], c["cluster_epochs"], c["qat_epochs"]) == (
        2 * cfg.channels_epochs, 2 * cfg.cluster_epochs, 2 * cfg.qat_epochs)


@pytest.mark.parametrize("max_tune", [1, 2, 16])
def test_max_tune_caps_the_leftover_fine_tunes_and_the_shortest_are_retried_first(max_tune):
    cfg = OptimizeConfig(max_accuracy_drop=0.5, quantize_modes=("qat",), max_tune=max_tune)
    fake = PruneHeavy()
    run_search(fake, SPACE, SENS, cfg, narrowed)
    tunes = [c.tune for c in fake.asked]
    # 1: no re-run at all; else up to the cap (this fake halves the drop per doubling: at x8 every candidate holds,
    # so nothing is left to re-run at x16)
    assert max(tunes) == min(max_tune, 8)
    # a re-run is asked only once no near miss with shorter fine-tunes that would beat the winner is left:
    # the first x4 comes after the last x2 re-run of a x1 candidate
    if max_tune >= 4:
        first4 = tunes.index(4)
        # a structure alone (no prune/cluster) with x2 fine-tunes is always a re-run, never a climb
        retries2 = [i for i, c in enumerate(fake.asked) if c.tune == 2 and not c.prune and not c.cluster]
        assert retries2 and max(retries2) < first4


class FirstReRunDoesNotFit(PruneHeavy):
    """PruneHeavy where the first candidate with longer fine-tunes does not fit in the time left."""

    def __init__(self):
        super().__init__()
        self.log: list[tuple[str, Candidate]] = []  # ("asked" | "refused", candidate), in order

    def __call__(self, c: Candidate) -> dict:
        if c.tune >= 2 and not any(k == "refused" for k, _ in self.log) or ("refused", c) in self.log:
            self.log.append(("refused", c))
            raise OutOfBudget(c.key)
        if c not in self.asked:
            self.log.append(("asked", c))
        return super().__call__(c)


def test_leftover_time_skips_a_candidate_that_does_not_fit_and_runs_cheaper_ones():
    cfg = OptimizeConfig(max_accuracy_drop=0.5, quantize_modes=("qat",), max_tune=16)
    fake, said = FirstReRunDoesNotFit(), []
    run_search(fake, SPACE, SENS, cfg, narrowed, progress=said.append)
    kinds = [k for k, _ in fake.log]
    assert "refused" in kinds, "no candidate was refused: the fake does not exercise the budget"
    # the search went on after the first candidate that did not fit: cheaper ones were measured after it
    assert "asked" in kinds[kinds.index("refused"):]
    refused = [c.key for k, c in fake.log if k == "refused"]
    assert len(set(refused)) == len(refused)  # a skipped candidate is never asked again
    assert any("did not fit in the time left" in m for m in said)
    assert not any(m.startswith("budget spent") for m in said)  # it ended because nothing was left to try


def test_a_validation_split_too_small_for_the_limit_is_said_before_the_search():
    """150 images: one disagreement carries 1.645 x 100 / 150 = 1.10 pt of margin, above a 1 pt limit."""
    from edgekit.optimize.api import margin_note

    note = margin_note(OptimizeConfig(max_accuracy_drop=1.0), 150)
    assert note and "150 images" in note and "1.10 pt" in note and "--val-split" in note
    assert margin_note(OptimizeConfig(max_accuracy_drop=1.0), 1000) is None  # 0.16 pt
    assert margin_note(OptimizeConfig(max_accuracy_drop=1.0, accuracy_margin=0.5), 150) is None  # fixed margin


def test_a_candidate_that_gained_reads_as_a_gain_plus_its_margin():
    cfg = OptimizeConfig(max_accuracy_drop=1.0)
    r = {"val_drop_pt": -0.69, "margin_pt": 1.98, "raw_bytes": 1, "latency_us": 1.0}
    assert missed(r, cfg) == ["accuracy drop -0.69 pt with its 1.98 pt margin for validation noise is 1.29 pt > 1 pt"]


def test_a_deep_models_groups_are_searched_in_tiers_of_sensitivity():
    """Thirty channel groups (a MobileNet has about as many) are six knobs: each candidate narrows a
    tier's groups alike, and the search asks about as many candidates as a six-group model."""
    from edgekit.optimize.search import TIERS, tiers

    names = [f"g{i:02d}" for i in range(30)]  # most sensitive first
    assert list(tiers(names[:4])) == names[:4]  # a small model: one group per knob, as before
    t = tiers(names)
    assert len(t) == TIERS and [len(m) for m in t.values()] == [5] * 6 and sum(t.values(), ()) == tuple(names)
    assert [len(m) for m in tiers(names[:8]).values()] == [2, 2, 1, 1, 1, 1]
    params = {n: 1000 for n in names}
    weight = {n: 4.0 / (1 + i) for i, n in enumerate(names)}  # drop per unit of fraction squared
    space = Space(tuple(names), tuple(names), tuple(names), params, {n: 64 for n in names})
    sens = [LayerSensitivity(n, 1000, weight[n], weight[n] / 2) for n in names]
    asked: list[Candidate] = []

    def evaluate(c: Candidate) -> dict:
        asked.append(c)
        ch = dict(c.channels)
        drop = sum(weight[k] * v * v for k, v in ch.items()) / 4 + 0.2 * bool(c.prune)
        raw = 100 + sum(int(p * (1 - ch.get(k, 0.0))) for k, p in params.items())
        return {"key": c.key, "val_drop_pt": drop, "val_accuracy": 0.9 - drop / 100, "raw_bytes": raw,
                "gzip_bytes": raw, "latency_us": raw / 100}

    cfg = OptimizeConfig(max_accuracy_drop=1.0, quantize_modes=("qat",), max_tune=1)
    run_search(evaluate, space, sens, cfg, lambda ch: {k: int(p * (1 - ch.get(k, 0.0))) for k, p in params.items()})
    for c in asked:  # every group of a tier at one fraction
        ch = dict(c.channels)
        assert all(len({ch.get(m, 0.0) for m in group}) == 1 for group in t.values()), c.key
    assert len({c.key for c in asked}) < 60
    winner, met = best([evaluate(c) for c in list(asked)], cfg)
    first = next(c for c in asked if c.key == winner["key"])
    assert met and dict(first.channels).get("g29", 0.0) >= 0.75  # the least sensitive tier narrowed hardest
    assert dict(first.channels).get("g00", 0.0) < dict(first.channels)["g29"]


@pytest.mark.parametrize("cost, kept", [(0.8, 2), (5.0, 0)])
def test_half_resolution_is_tried_first_and_kept_by_every_later_candidate_only_when_it_holds(cost, kept):
    """Phase 0: the stem at twice its stride alone, fine-tunes x4, x2, x1 in one batch; its drop here is
    ``cost`` / tune. 0.8 pt: x4 and x2 hold (0.2, 0.4 of the 0.5 allowed), so every later candidate keeps
    half resolution with fine-tunes x2 (the shortest that held) or longer; 5 pt: none holds, none keeps it."""
    class Resolution(Fake):
        def __call__(self, c: Candidate) -> dict:
            r = super().__call__(c)
            drop = r["val_drop_pt"] + (cost / c.tune if c.downsample == 2 else 0.0)
            return {**r, "val_drop_pt": drop, "val_accuracy": 0.9 - drop / 100,
                    "latency_us": r["latency_us"] / (3.0 if c.downsample == 2 else 1.0)}

    cfg = OptimizeConfig(max_accuracy_drop=0.5, quantize_modes=("qat",))
    fake = Resolution()
    run_search(fake, dataclasses.replace(SPACE, downsample=True), SENS, cfg, narrowed)
    first = fake.asked[:3]
    assert first == [Candidate.of(downsample=2, tune=t) for t in (4, 2, 1)]
    assert [c.key for c in first] == ["downsample=2 qat x4 epochs", "downsample=2 qat x2 epochs", "downsample=2 qat"]
    assert Candidate.from_dict(first[0].to_dict()) == first[0]  # the resume state and the workers keep it
    cc = first[2].compress_config(cfg)
    assert (cc.downsample, cc.channels, cc.channels_epochs, cc.technique) == (2, None, 8, "resolution+QAT")
    later = fake.asked[3:]
    assert {c.downsample for c in later} == ({2} if kept else {1})
    assert min(c.tune for c in later) == (kept or 1)
    results = [fake(c) for c in fake.asked]
    winner, met = best(results, cfg)
    assert met and winner["key"].startswith("downsample=2 ") == bool(kept)
    off = Fake()
    run_search(off, dataclasses.replace(SPACE, downsample=True), SENS, cfg.replace(downsample=False), narrowed)
    assert all(c.downsample == 1 for c in off.asked)  # --keep-resolution: never tried
