"""Run an artifact on a device: copy the runner and the model there, stream images, read results.

:func:`run_on_device` is the one entry point. The timings it returns were measured on the
device (see :mod:`edgekit.devices.runner_script` for the protocol); the host only sends
float32 NHWC images and reads back dequantized outputs and device facts. Nothing is written
on the host; the device's temporary folder is removed afterwards, also after a failure.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.devices import runner_script
from edgekit.devices.isa import cpu_class
from edgekit.devices.transport import Completed, Device, open_device
from edgekit.errors import InputError, UsageError
from edgekit.vocab import LITERT, ONNXRUNTIME

DEVICE_RUNTIMES = (LITERT, ONNXRUNTIME)
_MAGIC = runner_script.MAGIC.encode() + b" "
_END = runner_script.END


@dataclasses.dataclass(frozen=True)
class DeviceResult:
    """What the device returned: ``outputs`` (N, ...) float32, ``latencies_us`` (one per timed
    invoke, measured on the device), ``facts`` (machine, OS, Python, runtime and its version,
    ``cpuinfo`` excerpt, and ``cpu``: :func:`edgekit.devices.isa.cpu_class` of the device)."""

    outputs: np.ndarray
    latencies_us: tuple[float, ...]
    facts: dict[str, Any]


def run_on_device(uri: str | Device, artifact_path: str | Path, images: np.ndarray, runtime: str,
                  threads: int = 1, runs: int = 100, warmup: int = 10, timeout_s: float = 120.0) -> DeviceResult:
    """Run ``artifact_path`` on the device ``uri`` with its own ``runtime`` (``litert`` or
    ``onnxruntime``) over ``images`` (float32 NHWC in [0, 1]); time ``runs`` batch-1 invokes there.

    Raises UsageError for wrong arguments and InputError (one line naming the device) when the
    device is unreachable, lacks numpy or the runtime, has a Python < 3.8, hangs past
    ``timeout_s``, dies mid-run or answers something that is not the runner protocol.
    """
    request, payload = _request(artifact_path, images, runtime, threads, runs, warmup)
    device = uri if isinstance(uri, Device) else open_device(uri)
    device.check(timeout_s)
    remote = device.make_temp_dir(timeout_s)
    try:
        script = device.push(runner_script.__file__, remote, timeout_s)
        request["artifact"] = device.push(artifact_path, remote, timeout_s)
        line = json.dumps(request).encode() + b"\n"
        done = device.run_python([script], stdin=line + payload, timeout_s=timeout_s, what="the model run")
    finally:
        device.cleanup(remote)
    return parse_reply(device.uri, done, len(images))


def _request(artifact_path: str | Path, images: np.ndarray, runtime: str, threads: int, runs: int,
             warmup: int) -> tuple[dict[str, Any], bytes]:
    if runtime not in DEVICE_RUNTIMES:
        raise UsageError(f"Runtime {runtime!r} cannot run on a device. Expected one of: {', '.join(DEVICE_RUNTIMES)}.")
    if not Path(artifact_path).is_file():
        raise InputError(f"Artifact {str(artifact_path)!r} does not exist.")
    x = np.asarray(images)
    if x.ndim != 4 or len(x) == 0:
        raise UsageError(f"Device runs take a non-empty NHWC batch of images. Received: shape {list(x.shape)}.")
    if min(threads, runs) < 1 or warmup < 0:
        raise UsageError(f"threads and runs must be >= 1, warmup >= 0. Received: {threads}, {runs}, {warmup}.")
    request = {"protocol": 1, "runtime": runtime, "threads": int(threads), "runs": int(runs),
               "warmup": int(warmup), "count": int(len(x)), "shape": [int(d) for d in x.shape[1:]]}
    return request, np.ascontiguousarray(x, dtype="<f4").tobytes()


def parse_reply(uri: str, done: Completed, count: int) -> DeviceResult:
    """Decode the runner's answer in ``done`` (see the protocol); InputError for anything else."""
    out = done.stdout
    start = out.find(_MAGIC)
    if start < 0:
        if done.returncode != 0:
            signal = f"killed by signal {-done.returncode}" if done.returncode < 0 else f"exit code {done.returncode}"
            raise InputError(f"Device {uri}: the runner died before answering ({signal}: {done.last_error_line()}).")
        seen = out[:60].decode("utf-8", "replace").strip() or "nothing"
        raise InputError(f"Device {uri}: the runner's answer is not the edgekit protocol (got {seen!r}).")
    eol = out.find(b"\n", start)
    try:
        header = json.loads(out[start + len(_MAGIC):eol].decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError
    except ValueError:
        raise InputError(f"Device {uri}: the runner's answer header is damaged.") from None
    if header.get("status") == "error":
        raise InputError(f"Device {uri}: {header.get('message', 'the runner failed')} ({header.get('kind', '?')}).")
    body = out[eol + 1:]
    try:
        shape = [int(d) for d in header["outputs"]["shape"]]
        nbytes = int(header["outputs"]["nbytes"])
        latencies = tuple(float(t) for t in header["latencies_us"])
        facts = dict(header["facts"])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"Device {uri}: the runner's answer header lacks outputs, timings or facts.") from None
    if len(body) < nbytes + len(_END) or body[nbytes:nbytes + len(_END)] != _END:
        raise InputError(f"Device {uri}: the runner stopped mid-answer ({min(len(body), nbytes)} of {nbytes} output "
                         f"bytes; exit code {done.returncode}).")
    expected = 4 * int(np.prod(shape))
    if nbytes != expected or not shape or shape[0] != count or not latencies or min(latencies) <= 0:
        raise InputError(f"Device {uri}: the runner's answer does not fit the request (outputs {shape}, "
                         f"{len(latencies)} timings for {count} images).")
    outputs = np.frombuffer(body[:nbytes], dtype="<f4").reshape(shape).astype(np.float32)
    facts["cpu"] = cpu_class(str(facts.get("cpuinfo", "")), str(facts.get("machine", "")))
    return DeviceResult(outputs, latencies, facts)
