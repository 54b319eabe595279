"""tf.distribute strategies resolved by name: auto, default, mirrored, multiworker, tpu.

``auto`` takes a TPU when a TPU cluster resolves, else every visible GPU
(MirroredStrategy), else the default strategy. ``multiworker`` is TensorFlow's
MultiWorkerMirroredStrategy configured from ``TF_CONFIG`` (the CLI writes it from
``--workers host:port,... --worker-index I``), with a deadline on reaching the peers.
"""
from __future__ import annotations

import os
import socket
import threading
from typing import Any, Callable

from edgekit._lazy import tf
from edgekit.errors import UsageError
from edgekit.registry import Registry
from edgekit.train.workers import env_seconds

STRATEGIES: Registry = Registry("strategy")
Progress = Callable[[str], None]
DEFAULT_COLLECTIVE_TIMEOUT = 300.0  # seconds one all-reduce may wait for a slow or dead peer


@STRATEGIES.register("auto")
def auto(progress: Progress | None = None) -> Any:
    """TPU if one resolves, else all GPUs (mirrored), else the default strategy."""
    from edgekit.train.devices import auto_choice

    name = auto_choice()
    if progress:
        progress(f"strategy auto -> {name}")
    return STRATEGIES.get(name)(progress=progress)


@STRATEGIES.register("default")
def default(progress: Progress | None = None) -> Any:
    """No distribution: one replica on the default device (the GPU when there is one)."""
    return tf().distribute.get_strategy()


@STRATEGIES.register("mirrored")
def mirrored(progress: Progress | None = None) -> Any:
    """Synchronous data parallelism over the local GPUs (the CPU when there is none)."""
    return tf().distribute.MirroredStrategy()


@STRATEGIES.register("multiworker")
def multiworker(progress: Progress | None = None) -> Any:
    """MultiWorkerMirroredStrategy over the cluster in ``TF_CONFIG``.

    Fails with one line when ``TF_CONFIG`` is wrong, when TensorFlow already ran ops in
    this process (the strategy must come first), or when a peer cannot be reached within
    ``EDGEKIT_CLUSTER_TIMEOUT`` seconds (60). Collectives time out after
    ``EDGEKIT_COLLECTIVE_TIMEOUT`` seconds (300), so a dead peer ends training with an error.
    """
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    from edgekit.train import workers

    spec = workers.from_tf_config()
    timeout = workers.connect_timeout()
    collective_timeout = env_seconds("EDGEKIT_COLLECTIVE_TIMEOUT", DEFAULT_COLLECTIVE_TIMEOUT)
    ctx = context.context()
    if ctx._context_handle is not None:  # the strategy must configure the runtime before it starts
        raise UsageError("Strategy 'multiworker' must be created before TensorFlow runs any op in this process; "
                         "create it first (edgekit.train.train does).")
    if spec.num_workers > 1:
        with hold_port(spec.address):
            workers.wait_for_peers(spec, timeout, progress)
    if ctx.coordination_service is None:
        jobs = [coordination_config_pb2.CoordinatedJob(name=j, num_tasks=len(spec.jobs[j]))
                for j in workers.TASK_TYPES if j in spec.jobs]
        ctx.configure_coordination_service(
            service_type="standalone", service_leader=spec.leader, coordinated_jobs=jobs,
            cluster_register_timeout_in_ms=int(timeout * 1000),
            heartbeat_timeout_in_ms=int(max(timeout, 10) * 1000),
            shutdown_barrier_timeout_in_ms=int(max(timeout, 10) * 1000),
            allow_new_incarnation_to_reconnect=True,
        )
    tf_ = tf()
    options = tf_.distribute.experimental.CommunicationOptions(timeout_seconds=collective_timeout)
    try:
        strategy = tf_.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except (ValueError, RuntimeError, tf_.errors.OpError) as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise UsageError(f"MultiWorkerMirroredStrategy could not start on {spec.address}: {first}") from None
    if progress:
        progress(f"multiworker: {spec.task_type}:{spec.task_index} of {spec.num_workers} workers, "
                 f"{strategy.num_replicas_in_sync} replicas{' (chief)' if spec.is_chief else ''}")
    return strategy


@STRATEGIES.register("tpu")
def tpu(progress: Progress | None = None) -> Any:
    """TPUStrategy on the TPU named by ``TPU_NAME`` (``local`` on a TPU VM)."""
    from edgekit.train.devices import tpu_available

    if not tpu_available():
        raise UsageError("Strategy 'tpu' needs a TPU: none is attached (no TPU device, TPU_NAME unset). "
                         "Use --strategy auto to pick what this machine has.")
    tf_ = tf()
    try:
        resolver = tf_.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", "local"))
        tf_.config.experimental_connect_to_cluster(resolver)
        tf_.tpu.experimental.initialize_tpu_system(resolver)
        return tf_.distribute.TPUStrategy(resolver)
    except (ValueError, RuntimeError, tf_.errors.OpError) as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise UsageError(f"Could not connect to the TPU: {first}") from None


def make_strategy(name: str, progress: Progress | None = None) -> Any:
    """The strategy registered as ``name`` (UsageError listing the valid names otherwise)."""
    return STRATEGIES.get(name)(progress=progress)


def is_chief(strategy: Any) -> bool:
    """Whether this task writes the run's artifacts (always true outside multi-worker training)."""
    return bool(getattr(strategy.extended, "should_checkpoint", True))


def will_be_chief(name: str) -> bool:
    """Chief-ness known before the strategy starts (from ``TF_CONFIG`` for ``multiworker``)."""
    if name != "multiworker":
        return True
    from edgekit.train.workers import from_tf_config

    return from_tf_config().is_chief


class hold_port:
    """Keep ``host:port`` bound (accepting and closing connections) while peers probe it.

    Each worker holds its own address during the pre-flight wait so its peers see it up;
    the port is released just before TensorFlow's server binds it.
    """

    def __init__(self, address: str):
        host, _, port = address.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self._sock: socket.socket | None = None
        self._stop = threading.Event()

    def __enter__(self) -> "hold_port":
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("" if self.host not in ("127.0.0.1", "localhost", "::1") else self.host, self.port))
        except OSError as e:
            s.close()
            raise UsageError(f"This worker cannot listen on port {self.port} ({e.strerror}). "
                             "Choose a free port for it in --workers / TF_CONFIG.") from None
        s.listen(16)
        s.settimeout(0.2)
        self._sock = s
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()  # type: ignore[union-attr]
                conn.close()
            except OSError:
                continue

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        if self._sock is not None:
            self._sock.close()


