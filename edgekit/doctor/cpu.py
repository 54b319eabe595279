"""The CPU class that decides int8 vs float inference speed (XNNPACK / onnxruntime kernels).

The class and its verdict come from :mod:`edgekit.devices.isa`, the same place the latency
figures in validation.json, benchmark.md and the gates take theirs from.
"""
from __future__ import annotations

import platform

from edgekit.devices.isa import INT8_FEATURES  # noqa: F401 - re-exported by edgekit.doctor
from edgekit.doctor._common import Finding


def check_cpu(cpuinfo: str | None = None, machine: str | None = None) -> Finding:
    """``ok`` when int8 is expected to beat float on this CPU class, a warning with the reason otherwise."""
    from edgekit.devices.isa import cpu_class, host_cpu

    cpu = host_cpu() if cpuinfo is None else cpu_class(cpuinfo, machine or platform.machine())
    features = ", ".join(cpu["features"]) or "no int8 features"
    detail = f"{cpu['model']}: {cpu['class']} ({features}); {cpu['reason']}"
    if cpu["int8_expected_faster"]:
        return Finding("cpu int8", "ok", detail)
    if cpu["class"].endswith("-unknown"):
        return Finding("cpu int8", "warn", detail, "none: edgekit reads CPU flags on Linux only")
    return Finding("cpu int8", "warn", f"{detail}: int8 is not expected to be faster than float here",
                   "nothing to install: measure int8 latency on the deployment device (edgekit validate "
                   "--device) or a CPU of its class; latency gates compare only within one CPU class")
