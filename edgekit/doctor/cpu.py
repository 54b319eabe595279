"""The CPU features that decide int8 inference speed (XNNPACK / onnxruntime kernels)."""
from __future__ import annotations

import platform

from edgekit.devices.isa import INT8_FEATURES
from edgekit.doctor._common import Finding


def check_cpu(cpuinfo: str | None = None, machine: str | None = None) -> Finding:
    """The CPU features that decide int8 inference speed (XNNPACK / onnxruntime kernels)."""
    from edgekit.train.devices import cpu_flags, cpu_model

    flags, arch = cpu_flags(cpuinfo), (machine or platform.machine()).lower()
    model = cpu_model(cpuinfo)
    have = list(dict.fromkeys(label for f, label in INT8_FEATURES.items() if f in flags))
    listed = ", ".join(have) or "none of " + ", ".join(dict.fromkeys(INT8_FEATURES.values()))
    slow_fix = ("nothing to install: measure int8 latency on the deployment device or an AVX2/VNNI (x86) or "
                "dot-product (Arm) CPU; numbers from this machine understate int8 speed")
    if not flags:
        return Finding("cpu int8", "warn", f"{model}: CPU flags unreadable (/proc/cpuinfo); int8 speed unknown",
                       "none: edgekit reads CPU flags on Linux only")
    if arch in ("x86_64", "amd64", "i686", "i386") or "sse2" in flags or "avx" in flags:
        if "avx2" not in flags:
            return Finding("cpu int8", "warn", f"{model}: no AVX2 ({listed}): int8 kernels fall back to SSE "
                                               "and run slowly", slow_fix)
        dot = next((INT8_FEATURES[f] for f in ("amx_int8", "avx512_vnni", "avx_vnni") if f in flags), None)
        why = f"{dot}: int8 dot products in hardware" if dot else "int8 runs on AVX2 kernels (no VNNI)"
        return Finding("cpu int8", "ok", f"{model}: {listed}; {why}")
    if "asimddp" not in flags and "i8mm" not in flags:
        return Finding("cpu int8", "warn", f"{model}: no Arm dot product ({listed}): int8 uses plain NEON, slower",
                       slow_fix)
    return Finding("cpu int8", "ok", f"{model}: {listed}; int8 dot products in hardware")
