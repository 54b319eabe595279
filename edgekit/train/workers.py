"""Multi-worker cluster settings: ``TF_CONFIG`` or ``--workers host:port,... --worker-index I``.

Everything here is pure Python (no TensorFlow), so a wrong cluster description fails in
milliseconds with one line, before any worker starts a server or waits for its peers.
"""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from typing import Any, Callable, Mapping

from edgekit.errors import UsageError

TASK_TYPES = ("chief", "worker")
DEFAULT_CONNECT_TIMEOUT = 60.0  # seconds a worker waits for its peers before giving up


@dataclasses.dataclass(frozen=True)
class Cluster:
    """A validated cluster: ``jobs`` maps task type -> ``host:port`` addresses; this task's place."""

    jobs: dict[str, tuple[str, ...]]
    task_type: str
    task_index: int

    @property
    def num_workers(self) -> int:
        """Tasks that train (chief + workers)."""
        return sum(len(self.jobs.get(t, ())) for t in TASK_TYPES)

    @property
    def is_chief(self) -> bool:
        """The chief writes the artifacts: the ``chief`` task, else ``worker`` 0."""
        if "chief" in self.jobs:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0

    @property
    def address(self) -> str:
        return self.jobs[self.task_type][self.task_index]

    @property
    def leader(self) -> str:
        """The task that hosts the coordination service (``/job:chief/task:0`` or worker 0)."""
        return "/job:chief/replica:0/task:0" if "chief" in self.jobs else "/job:worker/replica:0/task:0"

    def peers(self) -> list[str]:
        """Addresses of every other training task."""
        me = self.address
        return [a for t in TASK_TYPES for a in self.jobs.get(t, ()) if a != me]

    def to_tf_config(self) -> dict[str, Any]:
        return {"cluster": {k: list(v) for k, v in self.jobs.items()},
                "task": {"type": self.task_type, "index": self.task_index}}

    def to_dict(self) -> dict[str, Any]:
        return {"jobs": {k: list(v) for k, v in self.jobs.items()}, "task_type": self.task_type,
                "task_index": self.task_index}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Cluster":
        return cls({k: tuple(v) for k, v in d["jobs"].items()}, d["task_type"], int(d["task_index"]))


def parse_address(addr: str, where: str = "--workers") -> str:
    """Validate one ``host:port`` (IPv6 as ``[::1]:port``); returns it stripped."""
    a = str(addr).strip()
    host, sep, port = a.rpartition(":")
    if not sep or not host or not port:
        raise UsageError(f"{where}: each address must be host:port. Received: {a!r}.")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{where}: port must be an integer in 1..65535. Received: {a!r}.")
    if host.startswith("[") != host.endswith("]") or any(c.isspace() for c in host):
        raise UsageError(f"{where}: bad host in {a!r}. Use a hostname, an IPv4 address or [IPv6].")
    return a


def from_workers(workers: str, worker_index: int | None) -> Cluster:
    """The cluster of ``--workers host:port,host:port,... --worker-index I`` (worker 0 is the chief)."""
    addrs = [parse_address(a) for a in str(workers).split(",") if a.strip()]
    if not addrs:
        raise UsageError(f"--workers needs at least one host:port. Received: {workers!r}.")
    _no_duplicates(addrs, "--workers")
    if worker_index is None:
        raise UsageError(f"--workers needs --worker-index, this worker's position in the list (0..{len(addrs) - 1}).")
    if isinstance(worker_index, bool) or not isinstance(worker_index, int) or not 0 <= worker_index < len(addrs):
        raise UsageError(f"--worker-index must be in 0..{len(addrs) - 1} for {len(addrs)} workers. "
                         f"Received: {worker_index!r}.")
    return Cluster({"worker": tuple(addrs)}, "worker", worker_index)


def from_tf_config(text: str | None = None) -> Cluster:
    """The cluster described by ``TF_CONFIG`` (the environment variable when ``text`` is None)."""
    text = os.environ.get("TF_CONFIG") if text is None else text
    if not text or not text.strip():
        raise UsageError("Strategy 'multiworker' needs a cluster: set TF_CONFIG or pass "
                         "--workers host:port,... --worker-index I.")
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"TF_CONFIG is not valid JSON ({e.msg} at char {e.pos}). Received: {text[:80]!r}.") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("cluster"), dict) or not isinstance(cfg.get("task"), dict):
        raise UsageError('TF_CONFIG must be {"cluster": {"worker": ["host:port", ...]}, '
                         f'"task": {{"type": "worker", "index": 0}}}}. Received: {text[:80]!r}.')
    jobs: dict[str, tuple[str, ...]] = {}
    for name, addrs in cfg["cluster"].items():
        if name not in TASK_TYPES:
            raise UsageError(f"TF_CONFIG cluster job {name!r} is not supported: MultiWorkerMirroredStrategy "
                             f"uses {' and '.join(TASK_TYPES)} tasks only.")
        if not isinstance(addrs, list) or not addrs:
            raise UsageError(f"TF_CONFIG cluster.{name} must be a non-empty list of host:port. Received: {addrs!r}.")
        jobs[name] = tuple(parse_address(a, f"TF_CONFIG cluster.{name}") for a in addrs)
    if not jobs:
        raise UsageError("TF_CONFIG cluster has no worker or chief addresses.")
    if len(jobs.get("chief", ())) > 1:
        raise UsageError(f"TF_CONFIG may name one chief, not {len(jobs['chief'])}.")
    _no_duplicates([a for v in jobs.values() for a in v], "TF_CONFIG cluster")
    task_type, index = cfg["task"].get("type"), cfg["task"].get("index", 0)
    if task_type not in jobs:
        raise UsageError(f"TF_CONFIG task.type must be one of the cluster's jobs ({', '.join(jobs)}). "
                         f"Received: {task_type!r}.")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(jobs[task_type]):
        raise UsageError(f"TF_CONFIG task.index must be in 0..{len(jobs[task_type]) - 1} for job {task_type!r}. "
                         f"Received: {index!r}.")
    return Cluster(jobs, task_type, index)


def resolve(workers: str | None = None, worker_index: int | None = None) -> Cluster:
    """``--workers``/``--worker-index`` when given, else ``TF_CONFIG``."""
    if workers:
        return from_workers(workers, worker_index)
    if worker_index is not None:
        raise UsageError("--worker-index needs --workers host:port,... (or set TF_CONFIG instead).")
    return from_tf_config()


def export_tf_config(cluster: Cluster) -> None:
    """Publish ``cluster`` as ``TF_CONFIG`` for TensorFlow's cluster resolver."""
    os.environ["TF_CONFIG"] = json.dumps(cluster.to_tf_config())


def wait_for_peers(
    cluster: Cluster,
    timeout: float = DEFAULT_CONNECT_TIMEOUT,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Block until every peer accepts a TCP connection, or raise a one-line UsageError after ``timeout``.

    TensorFlow's own wait for the cluster has no deadline in some paths (the collective
    barrier blocks forever); this check turns an unreachable peer into a clear message.
    The peers' servers start when their strategy is created, so every worker binds its own
    port first (see :func:`hold_port`) and then waits for the others here.
    """
    deadline = time.monotonic() + timeout
    pending = cluster.peers()
    announced = False
    while pending:
        still = []
        for addr in pending:
            host, _, port = addr.rpartition(":")
            try:
                with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                    pass
            except OSError:
                still.append(addr)
        pending = still
        if not pending:
            break
        if time.monotonic() >= deadline:
            raise UsageError(
                f"Worker {cluster.task_type}:{cluster.task_index} ({cluster.address}) could not reach "
                f"{', '.join(pending)} within {timeout:g}s. Start every worker with the same --workers list "
                "(or TF_CONFIG), check the hosts and ports, or raise the timeout (EDGEKIT_CLUSTER_TIMEOUT)."
            )
        if progress and not announced:
            progress(f"waiting up to {timeout:g}s for {', '.join(pending)} ...")
            announced = True
        time.sleep(0.5)


def env_seconds(name: str, default: float) -> float:
    """A positive number of seconds from environment variable ``name`` (``default`` if unset)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        v = float(raw)
    except ValueError:
        v = -1.0
    if not v > 0:
        raise UsageError(f"{name} must be a positive number of seconds. Received: {raw!r}.")
    return v


def connect_timeout() -> float:
    """Seconds to wait for peers: ``EDGEKIT_CLUSTER_TIMEOUT`` or 60."""
    return env_seconds("EDGEKIT_CLUSTER_TIMEOUT", DEFAULT_CONNECT_TIMEOUT)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (for local test clusters)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _no_duplicates(addrs: list[str], where: str) -> None:
    seen = set()
    for a in addrs:
        if a in seen:
            raise UsageError(f"{where}: address {a!r} appears twice; every worker needs its own host:port.")
        seen.add(a)
