"""Jobs as Ray tasks: ``workers`` at once, each with ``threads`` CPUs and as many TensorFlow op
threads, on a local Ray instance or the cluster at ``address``. A worker that dies mid-job (killed,
out of memory, its node lost) is retried by Ray; a job that raises is one :class:`JobFailed` line;
a cluster that cannot be reached or is lost is one line and exit 2."""
from __future__ import annotations

from typing import Any, Callable

from edgekit.errors import InputError, UsageError
from edgekit.parallel.executor import THREADS_ENV, ClusterLost, Executor, JobFailed

RETRIES = 3  # times Ray re-runs a job whose worker process died
RAY_TEMP = "/tmp/ray"  # Ray's own default: a short path (its socket paths must stay under 108 bytes)
NEEDS = "--workers N / --ray-address need Ray: pip install 'edgekit[ray]'"


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(f"{NEEDS}. Received: ray is not installed.") from None
    return ray


def _run(fn: Callable[..., Any], args: tuple) -> dict[str, Any]:
    """In the worker: the job, its error as one line instead of a traceback, and the node it ran on."""
    import ray

    from edgekit.errors import first_line
    from edgekit.parallel.executor import local_node

    node = f"{local_node()}/{ray.get_runtime_context().get_node_id()[:8]}"
    args = tuple(ray.get(a) if isinstance(a, ray.ObjectRef) else a for a in args)  # shared once, read here
    try:
        return {"ok": True, "value": fn(*args), "node": node}
    except Exception as e:  # the job's own failure: recorded by the caller, not retried
        return {"ok": False, "error": first_line(e), "node": node}


class RayPool(Executor):
    """Up to ``workers`` Ray tasks at once (the caller keeps no more in flight: a cluster with more
    CPUs would run more), ``threads`` CPUs each."""

    remote = True

    def __init__(self, workers: int, address: str | None, threads: int, say: Callable[[str], None]):
        ray = _ray()
        self.workers, self.threads, self._ray = workers, threads, ray
        env = {k: str(threads) for k in THREADS_ENV}
        env.update({"TF_NUM_INTEROP_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "TF_USE_LEGACY_KERAS": "1",
                    "PYTHONWARNINGS": "ignore"})
        self._owns = not ray.is_initialized()  # a Ray session started by the caller is left running
        if self._owns:
            _connect(ray, address, workers * threads)
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < threads:
            raise UsageError(f"The Ray cluster has {cpus} CPUs, fewer than the {threads} each job needs. Give "
                             f"--worker-threads {max(cpus, 1)}. Received: {threads}.")
        self._task = ray.remote(_run).options(num_cpus=threads, max_retries=RETRIES, retry_exceptions=False,
                                              runtime_env={"env_vars": env})
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        say(f"ray: {workers} workers x {threads} thread(s) on {len(nodes)} node(s), {cpus} CPUs"
            + (f" ({address})" if address not in (None, "local") else ""))

    def share(self, obj: Any) -> Any:
        return self._ray.put(obj)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._task.remote(fn, args)

    def wait(self, handle: Any) -> Any:
        out = self._get(handle)
        if not out["ok"]:
            raise JobFailed(f"{out['error']} (on {out['node']})")
        return out["value"], out["node"]

    def done(self, handle: Any) -> bool:
        ready, _ = self._ray.wait([handle], num_returns=1, timeout=0)
        return bool(ready)

    def first_done(self, handles: list[Any]) -> int:
        from ray import exceptions as rex

        try:
            ready, _ = self._ray.wait(list(handles), num_returns=1)
        except (rex.RaySystemError, rex.NodeDiedError, ConnectionError) as e:
            raise _lost(e) from None
        return handles.index(ready[0])

    def cancel(self, handle: Any) -> None:
        try:
            self._ray.cancel(handle, force=True)
        except Exception:  # already finished, or the cluster is gone: nothing to stop
            pass

    def _get(self, handle: Any) -> dict[str, Any]:
        from ray import exceptions as rex

        try:
            return self._ray.get(handle)
        except rex.WorkerCrashedError:
            raise JobFailed(f"its worker died {RETRIES + 1} times (killed or out of memory)") from None
        except (rex.RaySystemError, rex.GetTimeoutError, rex.NodeDiedError, ConnectionError) as e:
            raise _lost(e) from None

    def close(self) -> None:
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()


def _lost(e: Exception) -> ClusterLost:
    return ClusterLost(f"The Ray cluster was lost: {str(e).splitlines()[0][:160]}. The search state is saved: "
                       "run the same command with --resume when the cluster is back.")


def _connect(ray: Any, address: str | None, cpus: int) -> None:
    """Start a local Ray instance (``address`` None or "local") or join the cluster at ``address``;
    an address nothing answers on is one line at once (Ray itself would wait for minutes)."""
    import contextlib
    import io

    if address not in (None, "local", "auto"):
        _check_reachable(address)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # Ray's start-up notices
            if address in (None, "local"):
                ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False,
                         _temp_dir=RAY_TEMP)
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise InputError(f"Cannot join the Ray cluster at {address}: {str(e).splitlines()[0][:160]}. Start it with "
                         f"`ray start --head`, or drop --ray-address. Received: --ray-address {address}.") from None


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """InputError (one line) when nothing accepts a TCP connection at ``address`` (host:port or ray://host:port)."""
    import socket

    host, _, port = address.split("://")[-1].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            return
    except ValueError:
        raise UsageError(f"--ray-address must be HOST:PORT (the head node's GCS port, 6379 by default) or "
                         f"ray://HOST:PORT. Received: {address}.") from None
    except OSError as e:
        raise InputError(f"Nothing answers at the Ray address {address} ({e.strerror or e}). Start the head node "
                         f"with `ray start --head`, or drop --ray-address. Received: --ray-address {address}.") \
            from None

