"""The executor seam: submit a job (a module-level function and its arguments), wait for its
result. :class:`InProcess` runs a job only when its result is asked for, so a hint that is never
used costs nothing; :class:`edgekit.parallel.ray_pool.RayPool` runs up to ``workers`` jobs at
once as Ray tasks."""
from __future__ import annotations

import os
from typing import Any, Callable

from edgekit.errors import EdgekitError, InputError, UsageError

THREADS_ENV = ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS")  # what TensorFlow reads for its op thread pool


class JobFailed(EdgekitError):
    """A job raised in its worker: ``reason`` is its one-line error (the search records it and goes on)."""

    exit_code = 1

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ClusterLost(InputError):
    """The cluster the jobs ran on cannot be reached any more (exit 2; what was measured is kept)."""


class Executor:
    """Runs jobs; ``workers`` at once. ``share`` publishes a large object once (a dataset, model
    bytes) and returns what jobs take instead of the object."""

    workers = 1
    remote = False  # whether jobs run in other processes (their files come back as bytes)

    def share(self, obj: Any) -> Any:
        return obj

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    def wait(self, handle: Any) -> tuple[Any, str]:
        """(the job's result, the node it ran on); JobFailed when it raised in another process."""
        raise NotImplementedError

    def done(self, handle: Any) -> bool:
        """Whether the job has finished (its result is ready)."""
        raise NotImplementedError

    def first_done(self, handles: list[Any]) -> int:
        """The position in ``handles`` of a job that has finished, waiting for one (the first here)."""
        return 0

    def cancel(self, handle: Any) -> None:
        """Stop a job whose result is no longer wanted (a batch abandoned by an error or a Ctrl-C)."""

    def node(self) -> str:
        """The name of the machine this process runs on (the driver's, for an executor)."""
        return local_node()

    def close(self) -> None:
        pass


class InProcess(Executor):
    """Jobs run here, lazily: a submitted job runs when :meth:`wait` asks for it."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return [fn, args, None, False]

    def wait(self, handle: Any) -> tuple[Any, str]:
        if not handle[3]:  # its exceptions reach the caller as they are
            fn, args = handle[0], handle[1]
            handle[2], handle[3] = fn(*args), True
        return handle[2], local_node()

    def done(self, handle: Any) -> bool:
        return bool(handle[3])


def local_node() -> str:
    import socket

    return socket.gethostname()


def threads_per_job(workers: int, threads: int | None = None) -> int:
    """TensorFlow op threads of each job: ``threads`` when given, else this machine's cores shared
    between the ``workers`` (at least 1). Results depend on it (float sums in another order), so a
    search repeats its answers exactly only with the same value."""
    if threads is not None:
        if threads < 1:
            raise UsageError(f"--worker-threads must be >= 1. Received: {threads}.")
        return threads
    return max(1, (os.cpu_count() or 1) // max(workers, 1))


def pin_threads(threads: int) -> None:
    """Run this process's TensorFlow ops on ``threads`` threads (what a worker of that many threads
    does), before TensorFlow starts; UsageError when it already runs with another number."""
    import sys

    for k in THREADS_ENV:
        os.environ[k] = str(threads)
    if "tensorflow" not in sys.modules:
        return
    from edgekit._lazy import tf as _tf

    tf = _tf()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:
        have = tf.config.threading.get_intra_op_parallelism_threads()
        if have != threads:
            raise UsageError(f"TensorFlow already runs with {have or 'its default number of'} op threads in this "
                             f"process; set worker_threads before anything uses TensorFlow, or run `edgekit "
                             f"optimize --worker-threads {threads}`. Received: {threads}.") from None
