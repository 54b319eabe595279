"""Candidates measured (:mod:`edgekit.optimize.measure`: compress, export, the artifact in its
runtime on the validation split), in this process or as jobs on workers.

:class:`Evaluator` keeps the budget (a candidate starts only when the time left fits one) and
the resume state (a candidate already measured is not measured again)."""
from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path
from typing import Any, Callable

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
    pending: dict[str, Any] = dataclasses.field(default_factory=dict)  # key -> job started ahead of its turn

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

    def prefetch(self, candidates: list[Candidate]) -> None:
        """Start, on idle workers, the candidates the search may ask next (in that order): the search
        still asks one at a time and decides as it would alone, so it asks the same candidates and
        picks the same winner; a hint it never asks for only costs a worker's time. No-op in-process."""
        if self.pool is None or not self.pool.remote:
            return
        busy = sum(not self.pool.done(h) for h in self.pending.values())
        for c in candidates:
            if busy >= self.pool.workers:
                return
            key = c.key
            if key in self.pending or key in self.state.results or key in self.state.failed:
                continue
            if not c.baseline and self.estimate(c.tune) > self.remaining():
                continue
            self.pending[key] = self._submit(c)
            busy += 1

    def _submit(self, candidate: Candidate) -> Any:
        from edgekit.optimize.remote import run_candidate

        return self.pool.submit(run_candidate, self.shared, candidate.to_dict())

    def _build_and_measure(self, candidate: Candidate, folder: Path, handle: Any) -> tuple[Path, Path, dict, dict, str]:
        """(artifact, the model exported, compress metrics, measurements, node) of ``candidate`` in ``folder``:
        in this process, or as a job on the pool (``handle``: started ahead of its turn)."""
        if self.pool is None or not self.pool.remote:
            artifact, source, cm = build(candidate, self.model_path, self.dataset, self.config, folder,
                                         progress=prefixed(self.progress, "    "))
            m = measure_artifact(artifact, self.runtime, self.dataset.x_val, self.dataset.y_val,
                                 self.config.latency_runs)
            return artifact, source, cm, m, ""
        from edgekit.optimize.remote import unpack

        job, node = self.pool.wait(handle if handle is not None else self._submit(candidate))
        artifact, source = unpack(job, folder)
        job["measured"]["seconds"] = job["seconds"]
        return artifact, source or self.model_path, {"params": job["params"]}, job["measured"], node

    def __call__(self, candidate: Candidate) -> dict[str, Any]:
        key = candidate.key
        if key in self.state.results:
            if key not in self.order:
                self.order.append(key)
                self.progress(f"candidate {len(self.order)}: {key}: measured before (resumed)")
            return self.state.results[key]
        if key in self.state.failed:
            return self.state.failed[key]
        checkpoint()  # a Ctrl-C during the previous candidate stops here, its result saved
        handle = self.pending.pop(key, None)
        if handle is None and not candidate.baseline and self.estimate(candidate.tune) > self.remaining():
            raise OutOfBudget(key)
        n = len(self.state.results) + len(self.state.failed) + 1  # a failed one keeps its folder
        folder = self.out / CANDIDATES / f"{n:03d}"
        line = f"candidate {len(self.order) + 1}: {key} ({self.remaining() / 60:.1f} min left)"
        self.progress(counted("budget s", int(self.spent()), int(self.config.budget_seconds), line))
        t0 = time.perf_counter()
        try:
            artifact, source, cm, m, node = self._build_and_measure(candidate, folder, handle)
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
        }
        if node:
            result["node"] = node  # where it was built and its latency measured
        self.state.results[key] = result
        self.order.append(key)
        self.save()
        self.progress(f"  val accuracy {m['accuracy']:.4f} (drop {result['val_drop_pt']:+.2f} pt, margin "
                      f"{result['margin_pt']:.2f}), "
                      f"{m['raw_bytes']:,} B raw / {m['gzip_bytes']:,} B gzip, {m['latency_us']:.1f} us, "
                      f"{result['seconds']:.0f}s" + (f" on {node}" if node else ""))
        return result

    def _failed(self, key: str, n: int, candidate: Candidate, reason: str, seconds: float) -> dict[str, Any]:
        """Record a candidate that failed (kept in the state: a resumed search does not retry it)."""
        self.state.failed[key] = {"key": key, "index": n, "candidate": candidate.to_dict(), "failed": reason,
                                  "seconds": seconds}
        self.save()
        self.progress(f"  failed, the search goes on: {reason}")
        return self.state.failed[key]
