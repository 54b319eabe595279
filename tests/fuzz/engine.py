"""A seeded, bounded fuzzer of the ``edgekit`` command line.

Valid seed files (a tiny .keras model, its .tflite float/int8 and .onnx float/int8 exports,
an MNIST-style IDX folder, the recipes of ``recipes/`` and two run manifests) are made once,
offline. Each case mutates one of them (bit flips, byte overwrites, truncation, appended junk,
wrong headers, huge dimensions, and structural edits of flatbuffers, ONNX protos, the zip
members of a .keras file, YAML and JSON) and feeds it through the command a user would run.

Cases run in worker processes that import TensorFlow once and call the CLI in-process with
click's ``CliRunner``; the parent hands out cases, so a worker that dies (a signal: a "crash")
or overruns the per-case timeout (a "hang") is killed and replaced, and the case is recorded.
Every case must end in success (exit 0) or a clean error (a non-zero exit whose last stderr
line is the one ``Error: ...`` line); a traceback, a crash, a hang or any other ending is a
finding. Besides: a case marked ``must_fail`` (a hostile input) that exits 0 is a
``wrong_success``; a case whose sentinel folder (where its planted writes aim) is not empty
afterwards is ``file_written``; a case whose process tree's peak resident set passes
``MEMORY_LIMIT`` (4 GiB) is ``memory``. The peak of a case is measured in its worker: the
kernel's high-water mark of the worker's RSS is reset before each case (``/proc/self/clear_refs``)
and read after it (``VmHWM``), plus the peak of any child process it waited for during the case
(``RUSAGE_CHILDREN``, when it rose); the parent also polls the worker's whole process tree
(psutil, every 0.2 s) and keeps the larger value. A case depends only on (seed, kind, index),
so any finding replays on its own:

    python benchmarks/fuzz_cli.py --seed 0 --only tflite:17 --keep

``python -m tests.fuzz.engine seeds DIR`` builds the seeds; ``... worker`` is the worker loop.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from tests.fuzz.common import FINDINGS, KINDS, MEMORY_KILL, MEMORY_LIMIT, OUTCOMES, ROOT, child_env
from tests.fuzz.cases import Case, build_case
from tests.fuzz.seeds import make_seeds


# -- outcomes -------------------------------------------------------------------------------------
def classify(reply: dict[str, Any]) -> str:
    """success, clean (one ``Error:`` line last), traceback or bad_error (any other failure)."""
    text = reply.get("stdout", "") + reply.get("stderr", "")
    if reply.get("exception") or "Traceback (most recent call last)" in text:
        return "traceback"
    if reply.get("exit_code") == 0:
        return "success"
    lines = [ln for ln in reply.get("stderr", "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error:")]
    if lines and lines[-1].startswith("Error: ") and len(errors) == 1 and len(lines[-1]) < 2000:
        return "clean"
    return "bad_error"


def judge(case: Case, outcome: str, peak_rss: int, memory_limit: int = MEMORY_LIMIT) -> str:
    """The outcome of ``case`` once its sentinel, its must-fail mark and its memory peak are seen:
    file_written before memory before wrong_success before the ending itself."""
    if case.sentinel and Path(case.sentinel).is_dir() and any(Path(case.sentinel).iterdir()):
        return "file_written"
    if peak_rss > memory_limit:
        return "memory"
    if outcome == "success" and case.must_fail:
        return "wrong_success"
    return outcome


def sentinel_listing(case: Case) -> str:
    try:
        return ", ".join(str(p.relative_to(case.sentinel)) for p in sorted(Path(case.sentinel).rglob("*")))
    except OSError:
        return ""


@dataclasses.dataclass
class Finding:
    case: Case
    outcome: str
    detail: str

    def describe(self) -> str:
        c = self.case
        return (f"[{self.outcome}] {c.name} (seed {c.seed}) {c.mutation}\n  $ edgekit {' '.join(c.args)}\n"
                f"  replay: python benchmarks/fuzz_cli.py --seed {c.seed} --only {c.name} --keep\n"
                + "\n".join("  | " + ln for ln in self.detail.strip().splitlines()[-40:]))


@dataclasses.dataclass
class FuzzResult:
    counts: dict[str, collections.Counter]
    findings: list[Finding]
    errors: dict[str, collections.Counter]  # kind -> each clean error line, numbers and paths masked
    seconds: float
    cases: int
    slowest: list[tuple[float, str, str, str]]  # (seconds, case, outcome, mutation), slowest first
    peak_rss_mb: float  # the largest resident set of any worker or runtime probe it started
    kind_rss_mb: dict[str, float] = dataclasses.field(default_factory=dict)  # kind -> largest per-case peak
    kind_rss_case: dict[str, str] = dataclasses.field(default_factory=dict)  # kind -> the case of that peak

    def total(self) -> collections.Counter:
        out: collections.Counter = collections.Counter()
        for c in self.counts.values():
            out.update(c)
        return out

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for kind in [k for k in KINDS if k in self.counts] + ["total"]:
            c = self.total() if kind == "total" else self.counts[kind]
            rss = max(self.kind_rss_mb.values(), default=0.0) if kind == "total" else self.kind_rss_mb.get(kind, 0.0)
            rows.append({"kind": kind, "tried": sum(c.values()), "clean": c["clean"],
                         "successes": c["success"], "tracebacks": c["traceback"], "signals": c["crash"],
                         "hangs": c["hang"], "other endings": c["bad_error"], "wrong successes": c["wrong_success"],
                         "files written": c["file_written"], "over 4 GiB": c["memory"],
                         "peak RSS (MB)": f"{rss:,.0f}"})
        return rows

    @property
    def ok(self) -> bool:
        return not self.findings


POLL_S = 0.2  # seconds between the parent's polls of each busy worker's process tree


# -- workers ----------------------------------------------------------------------------------------
def worker_main() -> None:
    """Read cases (JSON lines) on stdin, run each through the CLI in-process, answer on stdout.

    The protocol uses duplicates of fds 0/1; the real fds 0/1 point at /dev/null so native
    code and child processes cannot corrupt it.
    """
    proto_in = os.fdopen(os.dup(0), "r")
    proto_out = os.fdopen(os.dup(1), "w", buffering=1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    import traceback

    from click.testing import CliRunner

    from edgekit._lazy import keras
    from edgekit.cli.main import cli

    keras()  # pay TensorFlow's import before the first case's clock starts
    import ai_edge_litert.interpreter  # noqa: F401
    import onnxruntime  # noqa: F401

    import resource

    proto_out.write(json.dumps({"ready": True}) + "\n")
    for line in proto_in:
        case = json.loads(line)
        _reset_peak_rss()
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        if case["args"][:1] == ["__selftest__"]:  # lets the tests check that the harness sees each failure
            _selftest(case["args"][1], case.get("sentinel") or "/nonexistent")
        res = CliRunner().invoke(cli, case["args"], prog_name="edgekit", catch_exceptions=True)
        exc = None
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            exc = "".join(traceback.format_exception(*res.exc_info))
        seconds = time.perf_counter() - t0
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        # the worker's own peak, plus a child's when a child this case waited for set a new high
        peak = _peak_rss() + (children_after * 1024 if children_after > children_before else 0)
        reply = {"exit_code": res.exit_code, "stdout": res.stdout[-20000:], "stderr": res.stderr[-20000:],
                 "exception": exc, "seconds": seconds, "peak_rss": peak}
        try:
            keras().backend.clear_session()
        except Exception:
            pass
        proto_out.write(json.dumps(reply) + "\n")


def _reset_peak_rss() -> None:
    """Reset this process's RSS high-water mark (Linux 4.0+); without it VmHWM spans earlier cases too."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_rss() -> int:
    """This process's RSS high-water mark in bytes since the last reset (ru_maxrss without /proc)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def tree_rss(pid: int) -> int:
    """Resident bytes of process ``pid`` and all its descendants now (0 when it is gone)."""
    try:
        import psutil

        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except Exception:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except Exception:
            pass
    return total


def _selftest(what: str, sentinel: str) -> None:
    if what == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif what == "hang":
        time.sleep(3600)
    elif what == "exit":
        os._exit(3)
    elif what == "write":  # a planted write that succeeds: the sentinel check must see it
        Path(sentinel, "pwned").write_text("x")
    elif what == "alloc":  # 600 MB touched, then freed: the case's peak shows it, the next case's not
        import numpy as np

        float(np.ones(600 << 17, np.float64).sum())


class _Worker:
    def __init__(self, log: Path, start_timeout: float):
        self.log = log
        self.log_fh = open(log, "ab")
        env = child_env()
        env["EDGEKIT_CACHE"] = str(log.parent.parent / "dataset-cache")  # cache=disk cases write here
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz.engine", "worker"], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log_fh,
                                     env=env, start_new_session=True)
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buf = b""
        self.case: Case | None = None
        self.deadline = 0.0
        self.polled_rss = 0
        reply = self.read_line(time.monotonic() + start_timeout)
        if not isinstance(reply, dict) or not reply.get("ready"):
            self.kill()
            raise RuntimeError(f"a fuzz worker did not start ({reply!r}); see {log}")

    def send(self, case: Case, timeout: float) -> None:
        self.case = case
        self.deadline = time.monotonic() + timeout
        self.polled_rss = 0
        self.proc.stdin.write((json.dumps({"args": case.args, "sentinel": case.sentinel}) + "\n").encode())
        self.proc.stdin.flush()

    def read_line(self, deadline: float) -> dict | str:
        """A reply, "eof" when the worker died, or "timeout"."""
        sel = selectors.DefaultSelector()
        sel.register(self.fd, selectors.EVENT_READ)
        try:
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    return "timeout"
                if not sel.select(left):
                    continue
                chunk = os.read(self.fd, 1 << 20)
                if not chunk:
                    return "eof"
                self.buf += chunk
        finally:
            sel.close()
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def pump(self) -> dict | str | None:
        """Non-blocking: a reply, "eof", or None (nothing complete yet)."""
        try:
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                return "eof" if b"\n" not in self.buf else self._take()
            self.buf += chunk
        except BlockingIOError:
            pass
        return self._take() if b"\n" in self.buf else None

    def _take(self) -> dict:
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def kill(self) -> int | None:
        """End this worker and the processes it started (its own process group)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rc = None
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self.log_fh.close()
        return rc

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


def plan(cases: int, kinds: Iterable[str] = KINDS) -> list[tuple[str, int]]:
    """``cases`` (kind, index) pairs spread evenly over ``kinds``, interleaved."""
    kinds = list(kinds)
    per = {k: cases // len(kinds) + (1 if i < cases % len(kinds) else 0) for i, k in enumerate(kinds)}
    out = []
    for i in range(max(per.values(), default=0)):
        out += [(k, i) for k in kinds if i < per[k]]
    return out


def run_fuzz(
    seeds: dict[str, Any],
    todo: list[tuple[str, int] | Case],
    seed: int = 0,
    workers: int = 2,
    timeout_s: float = 180.0,
    work: str | Path | None = None,
    keep: bool = False,
    progress: Callable[[str], None] | None = None,
    every: int = 50,
    memory_limit: int = MEMORY_LIMIT,
) -> FuzzResult:
    """Run the cases ``todo`` ((kind, index) pairs, or ready-made :class:`Case` objects) over
    ``workers`` worker processes; return counts and findings."""
    say = progress or (lambda _m: None)
    work = Path(work or tempfile.mkdtemp(prefix="edgekit-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    kinds = {t.kind if isinstance(t, Case) else t[0] for t in todo}
    counts: dict[str, collections.Counter] = {k: collections.Counter() for k in [*KINDS, *sorted(kinds)] if k in kinds}
    errors: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    findings: list[Finding] = []
    queue = collections.deque(todo)
    pool: list[_Worker] = []
    t0 = time.perf_counter()
    done = 0
    n_workers = max(1, min(workers, len(todo)))
    log_dir = work / "logs"
    log_dir.mkdir(exist_ok=True)
    spawned = 0
    slow: list[tuple[float, str, str, str]] = []
    kind_rss: dict[str, float] = {}
    kind_rss_case: dict[str, str] = {}

    def spawn() -> _Worker:
        nonlocal spawned
        spawned += 1
        return _Worker(log_dir / f"worker-{spawned}.log", start_timeout=300)

    def record(case: Case, outcome: str, detail: str = "", reply: dict | None = None, seconds: float = 0.0,
               peak_rss: int = 0) -> None:
        nonlocal done
        done += 1
        judged = judge(case, outcome, peak_rss, memory_limit)
        if judged != outcome:
            first = next((ln for ln in ((reply or {}).get("stdout", "") + (reply or {}).get("stderr", "")).splitlines()
                          if ln.strip()), "")
            why = {"file_written": f"the sentinel folder holds: {sentinel_listing(case)}",
                   "memory": f"peak resident set {peak_rss / 2**20:,.0f} MB (limit {memory_limit / 2**20:,.0f} MB)",
                   "wrong_success": "exit 0 on an input that must be refused"}[judged]
            detail = f"{why} (the case ended: {outcome}; first output line: {first!r})\n{detail}"
            outcome = judged
        mb = peak_rss / 2**20
        if mb >= kind_rss.get(case.kind, -1.0):
            kind_rss[case.kind], kind_rss_case[case.kind] = mb, case.name
        slow.append((seconds, case.name, outcome, case.mutation))
        slow.sort(reverse=True)
        del slow[5:]
        counts[case.kind][outcome] += 1
        if outcome == "clean" and reply is not None:
            last = [ln for ln in reply["stderr"].splitlines() if ln.strip()][-1]
            errors[case.kind][_normalise_error(last)] += 1
        if outcome in FINDINGS:
            findings.append(Finding(case, outcome, detail))
        if not keep and outcome not in FINDINGS:
            shutil.rmtree(case.folder, ignore_errors=True)
        if done % every == 0 or done == len(todo):
            tot = collections.Counter()
            for c in counts.values():
                tot.update(c)
            rate = done / (time.perf_counter() - t0)
            say(f"[fuzz] {done}/{len(todo)} cases ({rate:.1f}/s): " +
                ", ".join(f"{k} {tot[k]}" for k in OUTCOMES if tot[k] or k in ("clean", "success")))

    try:
        for _ in range(n_workers):
            pool.append(spawn())
        idle = list(pool)
        busy: list[_Worker] = []
        while queue or busy:
            while idle and queue:
                w = idle.pop()
                item = queue.popleft()
                case = item if isinstance(item, Case) else build_case(item[0], item[1], seed, seeds, work / "cases")
                w.send(case, timeout_s)
                busy.append(w)
            sel = selectors.DefaultSelector()
            for w in busy:
                sel.register(w.fd, selectors.EVENT_READ, w)
            wait = max(0.0, min(min(w.deadline for w in busy) - time.monotonic(), POLL_S))
            sel.select(wait)
            sel.close()
            for w in list(busy):
                w.polled_rss = max(w.polled_rss, tree_rss(w.proc.pid))
                reply = w.pump()
                case = w.case
                if isinstance(reply, dict):
                    outcome = classify(reply)
                    detail = (f"exit code {reply['exit_code']}\n--- stdout ---\n{reply['stdout'][-3000:]}\n"
                              f"--- stderr ---\n{reply['stderr'][-3000:]}\n"
                              + (f"--- exception ---\n{reply['exception'][-6000:]}" if reply["exception"] else ""))
                    record(case, outcome, detail, reply, reply.get("seconds", 0.0),
                           max(int(reply.get("peak_rss", 0)), w.polled_rss))
                    busy.remove(w)
                    idle.append(w)
                    continue
                if reply == "eof" or w.proc.poll() is not None:
                    rc = w.kill()
                    why = f"signal {-rc}" if rc is not None and rc < 0 else f"exit code {rc}"
                    record(case, "crash", f"the worker died ({why}) on this case\n{w.log_tail()}",
                           seconds=time.monotonic() - w.deadline + timeout_s, peak_rss=w.polled_rss)
                elif w.polled_rss > MEMORY_KILL:
                    w.kill()
                    record(case, "memory", f"the worker's process tree held {w.polled_rss / 2**20:,.0f} MB; killed",
                           seconds=time.monotonic() - w.deadline + timeout_s, peak_rss=w.polled_rss)
                elif time.monotonic() > w.deadline:
                    w.kill()
                    record(case, "hang", f"no answer within {timeout_s:.0f}s; the worker was killed", seconds=timeout_s,
                           peak_rss=w.polled_rss)
                else:
                    continue
                busy.remove(w)
                pool.remove(w)
                if queue or busy:
                    nw = spawn()
                    pool.append(nw)
                    idle.append(nw)
    finally:
        for w in pool:
            w.close()
        if not keep:
            shutil.rmtree(work / "cases", ignore_errors=True)
    import resource

    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # workers and the probes they waited for
    return FuzzResult(counts, findings, dict(errors), time.perf_counter() - t0, len(todo), slow, rss_kb / 1024,
                      kind_rss, kind_rss_case)


def _normalise_error(line: str) -> str:
    import re

    line = re.sub(r"'[^']*/(fuzz|edgekit-fuzz)[^']*'", "'<file>'", line)
    line = re.sub(r"\d+", "N", line)
    return line[:110]


def main(argv: list[str]) -> None:
    if argv[:1] == ["worker"]:
        worker_main()
    elif argv[:1] == ["seeds"] and len(argv) == 2:
        make_seeds(argv[1])
    else:
        sys.exit("usage: python -m tests.fuzz.engine seeds DIR | worker")


if __name__ == "__main__":
    main(sys.argv[1:])
