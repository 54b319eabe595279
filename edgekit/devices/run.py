"""Run an artifact on a device: copy the runner and the model there, stream images, read results.

:func:`run_on_device` is the one entry point. The timings it returns were measured on the
device (see :mod:`edgekit.devices.runner_script` for the protocol); the host only sends
float32 NHWC images and reads back dequantized outputs and device facts. The reply is not
trusted: it is capped in size, every field is checked (:mod:`edgekit.devices.reply`) and the
CPU class is derived here from the device's raw probe data. Nothing is written on the host but
the log file of a long error text; the device's temporary folder is removed afterwards, also
after a failure.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgekit.devices import runner_script
from edgekit.devices.errortext import clean, shorten, summarize
from edgekit.devices.isa import cpu_class
from edgekit.devices.reply import ErrorReply, OkReply, ReplyError, check_header
from edgekit.devices.transport import MAX_STDOUT, MODEL_RUN, Completed, Device, open_device
from edgekit.errors import InputError, UsageError
from edgekit.vocab import LITERT, ONNXRUNTIME

DEVICE_RUNTIMES = (LITERT, ONNXRUNTIME)
_MAGIC = runner_script.MAGIC.encode() + b" "
_END = runner_script.END


@dataclasses.dataclass(frozen=True)
class DeviceResult:
    """What the device returned, every field checked: ``outputs`` (N, ...) float32;
    ``latencies_us`` (one per timed invoke, measured on the device); ``facts`` (OS, Python,
    runtime and its version, the probe's ``machine`` and ``cpuinfo`` excerpt, and ``cpu``:
    :func:`edgekit.devices.isa.cpu_class` of that probe data, computed on this host)."""

    outputs: np.ndarray
    latencies_us: tuple[float, ...]
    facts: dict[str, Any]


def run_on_device(uri: str | Device, artifact_path: str | Path, images: np.ndarray, runtime: str,
                  threads: int = 1, runs: int = 100, warmup: int = 10, timeout_s: float = 120.0,
                  max_reply_bytes: int = MAX_STDOUT, log_dir: str | Path | None = None) -> DeviceResult:
    """Run ``artifact_path`` on the device ``uri`` with its own ``runtime`` (``litert`` or
    ``onnxruntime``) over ``images`` (float32 NHWC in [0, 1]); time ``runs`` batch-1 invokes there.

    Raises UsageError for wrong arguments and InputError (one line naming the device) when the
    device is unreachable, lacks numpy or the runtime, has a Python < 3.8, hangs past
    ``timeout_s``, dies mid-run, replies more than ``max_reply_bytes`` or anything that is not
    the runner protocol with plausible values. A long error text from the device is saved whole
    to a log file in ``log_dir`` (default: the temp folder) that the message names.
    """
    request, payload = _request(artifact_path, images, runtime, threads, runs, warmup)
    device = uri if isinstance(uri, Device) else open_device(uri)
    device.check(timeout_s)
    remote = device.make_temp_dir(timeout_s)
    try:
        script = device.push(runner_script.__file__, remote, timeout_s)
        request["artifact"] = device.push(artifact_path, remote, timeout_s)
        line = json.dumps(request).encode() + b"\n"
        done = device.run_python([script], stdin=line + payload, timeout_s=timeout_s, what=MODEL_RUN,
                                 max_stdout=max_reply_bytes)
    finally:
        device.cleanup(remote)
    return parse_reply(device.uri, done, request, timeout_s, log_dir)


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
    request = {"protocol": runner_script.PROTOCOL, "runtime": runtime, "threads": int(threads), "runs": int(runs),
               "warmup": int(warmup), "count": int(len(x)), "shape": [int(d) for d in x.shape[1:]]}
    return request, np.ascontiguousarray(x, dtype="<f4").tobytes()


def parse_reply(uri: str, done: Completed, request: Mapping[str, Any], timeout_s: float,
                log_dir: str | Path | None = None) -> DeviceResult:
    """Decode the runner's answer in ``done`` to ``request`` (see the protocol); every field is checked
    (:mod:`edgekit.devices.reply`) and the CPU class derived here from the raw probe data. InputError
    (one line) for anything else; a long error text from the device goes to a log file in ``log_dir``."""
    out = done.stdout
    start = out.find(_MAGIC)
    if start < 0:
        raise InputError(f"Device {uri}: {_no_answer(done, log_dir)}.")
    eol = out.find(b"\n", start)
    header = _header(uri, out[start + len(_MAGIC):eol if eol >= 0 else len(out)])
    try:
        reply = check_header(header, int(request["count"]), int(request["runs"]), timeout_s)
    except ReplyError as e:
        raise InputError(f"Device {uri}: the runner's reply is not valid: {e}. The device does not run edgekit's "
                         "runner, or it is faulty.") from None
    if isinstance(reply, ErrorReply):
        raise InputError(f"Device {uri}: {summarize(reply.message, log_dir, 'the runner failed')} ({reply.kind}).")
    return DeviceResult(_outputs(uri, out[eol + 1:] if eol >= 0 else b"", reply, done.returncode),
                        reply.latencies_us, _facts(reply))


def _no_answer(done: Completed, log_dir: str | Path | None) -> str:
    """Why stdout holds no protocol answer: the runner died (its stderr, summarized) or it is not edgekit's."""
    if done.returncode != 0:
        signal = f"killed by signal {-done.returncode}" if done.returncode < 0 else f"exit code {done.returncode}"
        text = summarize(done.stderr.decode("utf-8", "replace"), log_dir, "no error text")
        return f"the runner died before answering ({signal}: {text})"
    seen = shorten(clean(done.stdout[:60].decode("utf-8", "replace")), 60) or "nothing"
    return f"the runner's answer is not the edgekit protocol (got {seen!r})"


def _header(uri: str, line: bytes) -> Any:
    """The JSON of the header line (NaN and Infinity decode to floats: the schema names them)."""
    try:
        return json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        raise InputError(f"Device {uri}: the runner's answer header is damaged (not JSON).") from None


def _outputs(uri: str, body: bytes, reply: OkReply, returncode: int) -> np.ndarray:
    """The float32 outputs from ``body`` (``reply.nbytes`` then the END marker). Non-finite values are
    kept: validation reports them as a failure of the artifact on that device (``nonfinite_outputs``)."""
    n = reply.nbytes
    if len(body) < n + len(_END) or body[n:n + len(_END)] != _END:
        raise InputError(f"Device {uri}: the runner stopped mid-answer ({min(len(body), n)} of {n} output bytes; "
                         f"exit code {returncode}).")
    return np.frombuffer(body[:n], dtype="<f4").reshape(reply.shape).astype(np.float32)


def _facts(reply: OkReply) -> dict[str, Any]:
    """The device's facts, with ``machine``/``cpuinfo`` from its probe and the CPU class derived here."""
    facts: dict[str, Any] = {**reply.facts, "machine": reply.machine, "cpuinfo": reply.cpuinfo}
    facts["cpu"] = cpu_class(reply.cpuinfo, reply.machine)
    return facts
