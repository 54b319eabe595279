"""Candidates measured (:mod:`edgekit.optimize.measure`: compress, export, the artifact in its
runtime on the validation split), in this process or as jobs on workers.

:class:`Evaluator` keeps the budget (a candidate starts only when the time left fits one) and
the resume state (a candidate already measured is not measured again)."""
from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edgekit.data import Dataset
from edgekit.errors import first_line
from edgekit.interrupt import checkpoint
from edgekit.optimize.config import OptimizeConfig
from edgekit.optimize.measure import build, measure_artifact  # noqa: F401 (measure_artifact: api)
from edgekit.optimize.space import Candidate
from edgekit.optimize.state import SearchState
from edgekit.parallel import ClusterLost, Executor
from edgekit.progress import counted, prefixed

CANDIDATES = "candidates"


class OutOfBudget(Exception):
    """The time left does not fit one more candidate (caught by the search, never shown to users)."""


@dataclasses.dataclass
class Evaluator:
    """Measures candidates within the budget; results go to (and come from) the resume state."""

    model_path: Path
    dataset: Dataset
    config: OptimizeConfig
    out: Path
    state: SearchState
    reference_accuracy: float  # the input model's own accuracy on the validation split
    reference_labels: np.ndarray  # the input model's top-1 on the validation split (for the margin)
    runtime: str
    progress: Callable[[str], None]
    first_estimate_s: float = 0.0  # before any compressed candidate was measured
    started: float = dataclasses.field(default_factory=time.perf_counter)
    order: list[str] = dataclasses.field(default_factory=list)  # keys in the order this search asked them
    pool: Executor | None = None  # other processes or machines (None: every candidate in this process)
    shared: Any = None  # the pool's handle on :func:`edgekit.optimize.remote.shared_inputs`
    batches: int = 0  # batches with a member measured in this run (each result records its own)

    def spent(self) -> float:
        return self.state.spent_s + time.perf_counter() - self.started

    def remaining(self) -> float:
        return self.config.budget_seconds - self.spent()

    def estimate(self, tune: int = 1) -> float:
        """Seconds the next compressed candidate with fine-tunes ``tune`` times as long should take: ``tune``
        times the slowest measured so far per unit of fine-tune (a x8 candidate's seconds count as 1/8
        each, so its multiplier is not counted twice), else the first guess."""
        measured = ((r["seconds"], Candidate.from_dict(r["candidate"])) for r in self.state.results.values())
        done = [s / c.tune for s, c in measured if not c.baseline]
        return tune * (max(statistics.median(done), 0.75 * max(done)) if done else self.first_estimate_s)

    def save(self) -> None:
        self.state.spent_s, self.started = self.spent(), time.perf_counter()
        self.state.save()

    def workers(self) -> int:
        """Candidates measured at once: the pool's workers, 1 in this process."""
        return self.pool.workers if self.pool is not None and self.pool.remote else 1

    def fit(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The members of a batch that fit in the time left, in the batch's order: each is placed on the
        worker with the least estimated work so far and kept when that worker still ends within the time
        left (one that does not is left out; a cheaper one after it may still fit). Decided before the
        batch starts, from estimates alone (the baseline is never left out)."""
        lanes, left, keep = [0.0] * self.workers(), self.remaining(), []
        for c in candidates:
            cost = 0.0 if c.baseline else self.estimate(c.tune)
            i = lanes.index(min(lanes))
            if lanes[i] + cost <= left or c.baseline:
                lanes[i] += cost
                keep.append(c)
        return keep

    def _submit(self, candidate: Candidate) -> Any:
        from edgekit.optimize.remote import run_candidate

        return self.pool.submit(run_candidate, self.shared, candidate.to_dict())

    def _here(self, candidate: Candidate, folder: Path) -> tuple[Path, Path, dict, dict, str]:
        """(artifact, the model exported, compress metrics, measurements, node) of ``candidate``, built and
        measured in this process into ``folder``."""
        artifact, source, cm = build(candidate, self.model_path, self.dataset, self.config, folder,
                                     progress=prefixed(self.progress, "    "))
        m = measure_artifact(artifact, self.runtime, self.dataset.x_val, self.dataset.y_val,
                             self.config.latency_runs)
        return artifact, source, cm, m, ""

    def _unpack(self, job: dict[str, Any], node: str, folder: Path) -> tuple[Path, Path, dict, dict, str]:
        """The same for a job a worker finished: its folder written to ``folder``."""
        from edgekit.optimize.remote import unpack

        if folder.exists():  # leftovers of a search stopped while this candidate ran
            import shutil

            shutil.rmtree(folder)
        artifact, source = unpack(job, folder)
        job["measured"]["seconds"] = job["seconds"]
        return artifact, source or self.model_path, {"params": job["params"]}, job["measured"], node

    def __call__(self, candidate: Candidate) -> dict[str, Any]:
        """One candidate measured (a batch of one); OutOfBudget when it would not fit in the time left."""
        r = self.many([candidate])[0]
        if r is None:
            raise OutOfBudget(candidate.key)
        return r

    def many(self, candidates: Sequence[Candidate]) -> list[dict[str, Any] | None]:
        """A batch of candidates measured, results in the batch's order; None for a member left out
        because it would not fit in the time left (:meth:`fit`). In this process the members run one
        after the other; on a pool up to ``workers`` at once, each next one submitted as one finishes.
        Each result is saved to the state as soon as it is measured (a driver killed mid-batch loses only
        the members still running: a resumed search asks them again); which finishes first changes
        nothing else. Failed members are recorded (a failed result), as one candidate's failure."""
        batch = list({c.key: c for c in candidates}.values())
        new = self.fit([c for c in batch if c.key not in self.state.results and c.key not in self.state.failed])
        fresh = {c.key for c in new}
        listed = [c for c in batch if c.key in fresh or c.key in self.state.results and c.key not in self.order]
        number = {c.key: len(self.order) + 1 + i for i, c in enumerate(listed)}  # of the progress lines
        for c in listed:
            if c.key not in fresh:
                self.progress(f"candidate {number[c.key]}: {c.key}: measured before (resumed)")
        if new:
            checkpoint()  # a Ctrl-C during the previous batch stops here, its results saved
            self.batches += 1
            index = max((int(r.get("index", 0)) for d in (self.state.results, self.state.failed)
                         for r in d.values()), default=0)  # a folder of an earlier run is never reused
            slots = [(c, index + 1 + i, number[c.key]) for i, c in enumerate(new)]
            if self.pool is None or not self.pool.remote:
                for c, n, k in slots:
                    checkpoint()
                    self._start(c, k)
                    self._finish(c, n, time.perf_counter(), lambda c=c, n=n: self._here(c, self._folder(n)))
            else:
                self._run_on_pool(slots)
        # the report's order is the batch's, whichever member finished first (a failed one is not listed)
        self.order.extend(c.key for c in listed if c.key in self.state.results)
        return [self.state.results.get(c.key, self.state.failed.get(c.key)) for c in candidates]

    def _folder(self, n: int) -> Path:
        return self.out / CANDIDATES / f"{n:03d}"

    def _start(self, candidate: Candidate, number: int) -> None:
        line = f"candidate {number}: {candidate.key} ({self.remaining() / 60:.1f} min left)"
        self.progress(counted("budget s", int(self.spent()), int(self.config.budget_seconds), line))

    def _run_on_pool(self, slots: list[tuple[Candidate, int, int]]) -> None:
        """The batch on the pool: at most ``workers`` members in flight, the next submitted, in the
        batch's order, when one finishes; each recorded as it finishes."""
        queue, flying = list(slots), []  # (candidate, folder number, handle, start)
        try:
            while queue or flying:
                while queue and len(flying) < self.workers():
                    c, n, k = queue.pop(0)
                    self._start(c, k)
                    flying.append((c, n, self._submit(c), time.perf_counter()))
                c, n, h, t0 = flying.pop(self.pool.first_done([f[2] for f in flying]))

                def fetch(c=c, n=n, h=h) -> tuple[Path, Path, dict, dict, str]:
                    job, node = self.pool.wait(h)
                    return self._unpack(job, node, self._folder(n))

                self._finish(c, n, t0, fetch)
                checkpoint()  # Ctrl-C: the members still running are asked again by a resumed search
        finally:
            for f in flying:
                self.pool.cancel(f[2])

    def _finish(self, candidate: Candidate, n: int, t0: float,
                get: Callable[[], tuple[Path, Path, dict, dict, str]]) -> dict[str, Any]:
        """Record ``candidate``'s measurements (``get``: build and measure it, or fetch a worker's job)."""
        key, folder = candidate.key, self._folder(n)
        try:
            artifact, source, cm, m, node = get()
        except Exception as e:  # one candidate that cannot be built or run does not end the search
            if candidate.baseline or isinstance(e, ClusterLost):  # a lost cluster ends the search, state kept
                raise
            return self._failed(key, n, candidate, first_line(e), time.perf_counter() - t0)
        result = {
            "key": key, "index": n, "candidate": candidate.to_dict(),
            "technique": "baseline (PTQ of the input)" if candidate.baseline else candidate.compress_config(
                self.config).technique,
            "folder": str(folder.relative_to(self.out)), "artifact": str(artifact.relative_to(self.out)),
            "model": str(source.relative_to(self.out)) if not candidate.baseline else None,
            "val_accuracy": m["accuracy"], "val_drop_pt": 100.0 * (self.reference_accuracy - m["accuracy"]),
            "margin_pt": self.config.margin_pt(int((m["labels"] != self.reference_labels).sum()),
                                               len(self.reference_labels)),
            "raw_bytes": m["raw_bytes"], "gzip_bytes": m["gzip_bytes"], "latency_us": m["latency_us"],
            "params": cm.get("params"), "seconds": m.pop("seconds", time.perf_counter() - t0),
            "batch": self.batches,  # measured together with the others of this number (in this run)
        }
        if node:
            result["node"] = node  # where it was built and its latency measured
        self.state.results[key] = result
        self.save()
        named = f"{key}: " if self.workers() > 1 else ""  # members of a batch finish in any order
        self.progress(f"  {named}val accuracy {m['accuracy']:.4f} (drop {result['val_drop_pt']:+.2f} pt, margin "
                      f"{result['margin_pt']:.2f}), "
                      f"{m['raw_bytes']:,} B raw / {m['gzip_bytes']:,} B gzip, {m['latency_us']:.1f} us, "
                      f"{result['seconds']:.0f}s" + (f" on {node}" if node else ""))
        return result

    def _failed(self, key: str, n: int, candidate: Candidate, reason: str, seconds: float) -> dict[str, Any]:
        """Record a candidate that failed (kept in the state: a resumed search does not retry it)."""
        self.state.failed[key] = {"key": key, "index": n, "candidate": candidate.to_dict(), "failed": reason,
                                  "seconds": seconds, "batch": self.batches}
        self.save()
        self.progress(f"  failed, the search goes on: {reason}")
        return self.state.failed[key]
