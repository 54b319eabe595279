"""Validation on a real device: the artifact runs there on its own runtime, over the same
holdout images, and gets the same metrics as on the host (accuracy, agreement, max |diff|,
p50/p90 of the latencies the device measured) against the same reference outputs.

:func:`validate_on_devices` is called by :func:`edgekit.validate.validate` when its config
names devices; it writes nothing: a device that fails (unreachable, no runtime, old Python,
timeout, an implausible reply) raises one InputError line before validate writes anything.
The reply itself is checked field by field in :mod:`edgekit.devices.reply` (finite timings, a
p50 of at least 0.2 us, outputs that fit the request, the CPU class derived on this host from
the device's raw probe data); :func:`check_device_metrics` checks what is recorded from it.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from edgekit.errors import InputError, UsageError
from edgekit.progress import counted
from edgekit.validate.config import ValidateConfig
from edgekit.validate.metrics import compare, status_of, tolerance_failure

# device facts kept in validation.json and the manifest (the raw cpuinfo is not)
FACTS = ("machine", "system", "release", "platform", "python", "implementation", "cpu_count", "numpy", "runtime",
         "runtime_version")
WARMUP = 10


def device_runtimes() -> tuple[str, ...]:
    from edgekit.devices.run import DEVICE_RUNTIMES

    return DEVICE_RUNTIMES


def unsupported(runtime: str) -> str:
    """Why targets of ``runtime`` do not run on a device (one line)."""
    from edgekit.vocab import TFLITE_MICRO

    if runtime == TFLITE_MICRO:
        return "not supported on a device: micro needs a TFLite Micro host binary there"
    return f"not supported on a device: {runtime} (devices run {', '.join(device_runtimes())})"


def check_device_targets(runtimes: Mapping[str, str]) -> None:
    """UsageError when devices are asked for but no target (``{target: runtime}``) can run on one."""
    if not any(r in device_runtimes() for r in runtimes.values()):
        name, runtime = next(iter(runtimes.items()))
        raise UsageError(f"Target {name!r}: {unsupported(runtime)}. Validate a .tflite or .onnx artifact "
                         f"on the device. Received: {', '.join(runtimes)}.")


def device_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The facts worth recording: machine, OS, Python, runtime versions and the CPU class (no cpuinfo)."""
    from edgekit.devices.isa import cpu_summary

    out = {k: facts[k] for k in FACTS if k in facts}
    if isinstance(facts.get("cpu"), Mapping):
        out["cpu"] = cpu_summary(dict(facts["cpu"]))
    return out


def _in_range(value: Any, low: float, high: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and low <= value <= high


def check_device_metrics(uri: str, m: Mapping[str, Any], lat: Mapping[str, Any], max_ms: float) -> None:
    """InputError (one line naming the value) unless the device's accuracy is in [0, 1], its agreement
    in [0, 100] % and its latencies finite with 0 < p50 <= p90 <= max: nothing else is recorded or gated."""
    checks = (("accuracy", m.get("accuracy"), 0.0, 1.0), ("agreement_pct", m.get("agreement_pct"), 0.0, 100.0),
              ("latency_p50_ms", lat.get("p50_ms"), 1e-12, lat.get("p90_ms")),
              ("latency_p90_ms", lat.get("p90_ms"), lat.get("p50_ms"), max_ms))
    for name, value, low, high in checks:
        if not (_in_range(low, -math.inf, math.inf) and _in_range(high, -math.inf, math.inf)
                and _in_range(value, low, high)):
            raise InputError(f"Device {uri}: its {name} is {value!r}, outside [{low!r}, {high!r}]; the device's "
                             "reply is not plausible, nothing was recorded.")


def validate_on_devices(
    items: Mapping[str, tuple[Path, str]],
    x: np.ndarray,
    y: np.ndarray,
    reference_probs: np.ndarray,
    cfg: ValidateConfig,
    say: Callable[[str], None],
    exact: Mapping[str, bool] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{target: {uri: entry}}`` for every ``{target: (path, runtime)}`` on every device of ``cfg``.

    An entry holds the host's comparison metrics, ``latency_p50_ms``/``latency_p90_ms`` from the
    device's own timings, ``threads``, ``runs``, ``status`` and ``facts`` (:func:`device_facts`).
    Targets whose runtime cannot run on a device get only a ``status`` saying why. A target in
    ``exact`` must match the reference within ``cfg.max_diff`` there too: a miss sets ``status``
    and ``_failure`` (the ValidationError, for the caller to collect and remove).
    """
    from edgekit.devices.run import run_on_device
    from edgekit.interrupt import checkpoint
    from edgekit.runtimes.base import DEFAULT_THREADS, percentiles

    threads = cfg.threads or DEFAULT_THREADS
    out: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in items}
    total, done = len(cfg.devices) * len(items), 0
    for uri in cfg.devices:
        for name, (path, runtime) in items.items():
            done += 1
            checkpoint()
            if runtime not in device_runtimes():
                say(f"{name} on {uri}: {unsupported(runtime)}")
                out[name][uri] = {"status": unsupported(runtime)}
                continue
            say(counted("devices", done, total,
                        f"{name}: running {path.name} on {uri} ({runtime}; on devices {done}/{total})"))
            r = run_on_device(uri, path, x, runtime, threads=threads, runs=cfg.runs, warmup=WARMUP,
                              timeout_s=cfg.device_timeout_s)
            if r.outputs.shape != reference_probs.shape:
                raise InputError(f"Device {uri}: {path.name} gives outputs of shape {list(r.outputs.shape[1:])} per "
                                 f"image, the reference {list(reference_probs.shape[1:])}.")
            m = compare(reference_probs, r.outputs, y)
            lat = percentiles([t / 1e6 for t in r.latencies_us])
            check_device_metrics(uri, m, lat, max(t / 1e6 for t in r.latencies_us) * 1e3 * (1 + 1e-9))
            fail = tolerance_failure(f"{name}@{uri}", m, bool((exact or {}).get(name)), cfg.max_diff,
                                     cfg.min_agreement)
            entry = {**m, "latency_p50_ms": lat["p50_ms"], "latency_p90_ms": lat["p90_ms"], "threads": threads,
                     "runs": lat["runs"], "status": status_of(fail), "facts": device_facts(r.facts), "_failure": fail}
            out[name][uri] = entry
            cpu = entry["facts"].get("cpu", {})
            say(f"{name} on {uri}: accuracy {m['accuracy']:.4f}, agreement {m['agreement_pct']:.2f}%, max|diff| "
                f"{m['max_abs_diff']:.2e}, p50 {lat['p50_ms'] * 1e3:.1f} us ({cpu.get('class', '?')})")
    return out


def device_rows(targets: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Table rows of every device entry of validation's ``targets``."""
    rows = []
    for name, t in targets.items():
        for uri, d in (t.get("devices") or {}).items():
            if "accuracy" not in d:
                rows.append({"target": name, "device": uri, "status": d.get("status", "?")})
                continue
            cpu = d.get("facts", {}).get("cpu", {})
            rows.append({
                "target": name, "device": uri, "cpu": f"{cpu.get('model', '?')} ({cpu.get('class', '?')})",
                "accuracy": f"{d['accuracy']:.4f}", "agreement": f"{d['agreement_pct']:.2f}%",
                "max |diff|": f"{d['max_abs_diff']:.2e}", "p50 (us)": f"{d['latency_p50_ms'] * 1e3:.1f}",
                "p90 (us)": f"{d['latency_p90_ms'] * 1e3:.1f}", "threads": d["threads"], "status": d.get("status", "ok"),
            })
    return rows


__all__ = ["check_device_metrics", "check_device_targets", "device_facts", "device_rows", "validate_on_devices"]
