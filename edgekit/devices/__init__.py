"""Real devices: run artifacts where they will be deployed, and know what kind of CPU that is.

- ``transport``: device URIs (``ssh://``, ``adb://``, ``exec://``, option-like parts refused), the
  TRANSPORTS registry; reach a device, copy a file to a temporary folder there, run its Python
  (output capped, the process group killed at the timeout), clean up.
- ``runner_script``: the self-contained runner the host copies to the device (stdlib, numpy
  and the device's runtime only) and its framed protocol.
- ``reply``: the runner's reply checked field by field (types, finite and plausible timings,
  shapes that fit the request); ``errortext``: a device's error text as one line (+ a log file).
- ``run``: :func:`run_on_device` -> :class:`DeviceResult` (outputs, on-device latencies, facts).
- ``isa``: the CPU class of a machine from its /proc/cpuinfo (``x86-avx2``, ``arm-dotprod`` ...)
  and :func:`same_cpu_class` for latency gates.

Names resolve lazily so that ``edgekit.devices.isa`` (used by ``edgekit doctor``) stays light.
"""
from __future__ import annotations

from typing import Any

_LAZY = {"run_on_device": "run", "DeviceResult": "run", "open_device": "transport", "TRANSPORTS": "transport",
         "cpu_class": "isa", "same_cpu_class": "isa",
         "host_cpu": "isa", "cpu_summary": "isa", "describe_cpu": "isa"}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"edgekit.devices.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'edgekit.devices' has no attribute {name!r}")
