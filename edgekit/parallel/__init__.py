"""Where independent jobs run: in this process (``workers=1``, no Ray import) or as Ray tasks on
this machine or a Ray cluster (``workers=N``, ``ray_address``). ``optimize`` and ``sweep`` submit
their candidates and runs through an :class:`Executor`."""
from edgekit.parallel.choose import make_executor
from edgekit.parallel.executor import ClusterLost, Executor, InProcess, JobFailed, threads_per_job

__all__ = ["ClusterLost", "Executor", "InProcess", "JobFailed", "make_executor", "threads_per_job"]
