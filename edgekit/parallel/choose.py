"""Which executor a command gets from its --workers and --ray-address."""
from __future__ import annotations

import os
from typing import Callable

from edgekit.errors import UsageError
from edgekit.parallel.executor import Executor, InProcess, threads_per_job


def make_executor(workers: int = 1, address: str | None = None, threads: int | None = None,
                  say: Callable[[str], None] = lambda _m: None) -> Executor:
    """:class:`InProcess` for one worker on this machine, else a Ray pool of ``workers`` tasks of
    ``threads`` TensorFlow threads each, on this machine or the cluster at ``address``
    (``RAY_ADDRESS`` when None; "local" for a new local one)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise UsageError(f"--workers must be a positive integer. Received: {workers!r}.")
    address = address or os.environ.get("RAY_ADDRESS") or None
    if workers == 1 and address is None:
        return InProcess()
    from edgekit.parallel.ray_pool import RayPool

    return RayPool(workers, address, threads_per_job(workers, threads), say)
