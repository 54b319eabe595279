"""The evaluator's batches: members left out by the budget are chosen before the batch starts, from
estimates (never by what finishes first); on workers, at most ``workers`` members run at once, each
result is saved as it arrives, and the report's order and folder numbers are the batch's."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.optimize.config import OptimizeConfig
from edgekit.optimize.evaluate import Evaluator
from edgekit.optimize.space import Candidate
from edgekit.optimize.state import SearchState
from edgekit.parallel import Executor


class Pool(Executor):
    """Remote-like jobs that finish last submitted first; counts how many were in flight at once."""

    remote = True

    def __init__(self, workers: int):
        self.workers, self.flying, self.most, self.submitted = workers, 0, 0, []

    def submit(self, fn, *args):
        self.flying += 1
        self.most = max(self.most, self.flying)
        self.submitted.append(args[1]["channels"])
        return {"candidate": args[1]}

    def first_done(self, handles):
        return len(handles) - 1

    def wait(self, handle):
        self.flying -= 1
        return handle, "node-1/abcd1234"


def evaluator(tmp_path: Path, pool: Executor | None = None, left: float = 1e9) -> tuple[Evaluator, list[str]]:
    said: list[str] = []
    state = SearchState(tmp_path / "state.json", "k", {})
    ev = Evaluator(Path("m.keras"), None, OptimizeConfig(), tmp_path, state, 0.9, np.zeros(4, int), "litert",
                   said.append, first_estimate_s=10.0, pool=pool)
    ev.remaining = lambda: left  # type: ignore[method-assign]

    def measured(c: Candidate, folder: Path):
        m = {"accuracy": 0.9 - 0.01 * len(c.channels), "labels": np.zeros(4, int), "raw_bytes": 1000,
             "gzip_bytes": 500, "latency_us": 1.0, "seconds": 10.0 * c.tune}
        return folder / "a.tflite", folder / "m.keras", {"params": {}}, m, ""

    ev._here = measured  # type: ignore[method-assign]
    ev._unpack = lambda job, node, folder: (*measured(Candidate.from_dict(job["candidate"]), folder)[:4], node)
    return ev, said


def cands(n: int, tune: int = 1) -> list[Candidate]:
    return [Candidate.of(channels={f"l{i}": 0.5}, tune=tune) for i in range(n)]


def test_a_batch_is_trimmed_by_estimated_cost_before_it_starts(tmp_path):
    # 25 s left, 10 s per candidate: one worker fits two, two workers fit four (two each)
    ev, _ = evaluator(tmp_path, left=25.0)
    assert ev.fit(cands(4)) == cands(4)[:2]
    ev2, _ = evaluator(tmp_path, Pool(2), left=25.0)
    assert ev2.fit(cands(4)) == cands(4)
    # a member that does not fit is left out, a cheaper one after it still runs
    big, small = Candidate.of(channels={"x": 0.5}, tune=4), Candidate.of(channels={"y": 0.5})
    assert ev.fit([big, small]) == [small]
    got = ev.many([big, small])
    assert got[0] is None and got[1]["key"] == small.key and ev.order == [small.key]


def test_on_workers_the_order_and_folders_are_the_batchs_whatever_finishes_first(tmp_path):
    batch = cands(5)
    pool = Pool(2)
    ev, said = evaluator(tmp_path, pool)
    results = ev.many(batch)
    assert [r["key"] for r in results] == [c.key for c in batch]
    assert ev.order == [c.key for c in batch]  # the report's order
    assert list(ev.state.results) != ev.order  # saved as they arrived (here: last submitted first)
    assert [ev.state.results[c.key]["index"] for c in batch] == [1, 2, 3, 4, 5]
    assert pool.most == 2 and pool.submitted == [dict(c.channels) for c in batch]  # in order, 2 at a time
    assert all(r["node"] == "node-1/abcd1234" for r in results)
    # in this process: the same results, order and folders
    one, _ = evaluator(tmp_path / "one")
    assert [(r["key"], r["index"], r["val_accuracy"]) for r in one.many(batch)] == [
        (r["key"], r["index"], r["val_accuracy"]) for r in results]
    # asked again (a resumed search): nothing measured twice, each said once as measured before
    again, said2 = evaluator(tmp_path, pool)
    again.state = ev.state
    assert again.many(batch[::-1])[0]["key"] == batch[-1].key
    assert [m for m in said2 if "measured before" in m] == [
        f"candidate {i + 1}: {c.key}: measured before (resumed)" for i, c in enumerate(batch[::-1])]


def test_a_new_member_after_a_resume_takes_a_folder_no_earlier_member_used(tmp_path):
    ev, _ = evaluator(tmp_path, Pool(2))
    batch = cands(3)
    ev.many([batch[2]])  # a member that finished before the driver was killed: folder 001
    assert ev.many(batch)[0]["index"] == 2 and ev.state.results[batch[1].key]["index"] == 3
