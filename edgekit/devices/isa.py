"""The CPU class of a machine, from its ``/proc/cpuinfo`` text: what decides int8 vs float speed.

Latency measured on one CPU class says little about another: on an AVX2-only x86 CPU the reference
int8 .tflite ran at 143 us against 93 us for float (LiteRT, batch 1, 1 thread), while on an
AVX-512 VNNI machine int8 was 2.46x faster than float. A latency gate compares numbers only
between machines of the same class (:func:`same_cpu_class`).
"""
from __future__ import annotations

import platform
from typing import Any

from edgekit.train.devices import cpu_flags

# /proc/cpuinfo flags that decide int8 inference speed (XNNPACK / onnxruntime kernels)
INT8_FEATURES: dict[str, str] = {
    "avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512", "avx512_vnni": "AVX-512 VNNI", "avx_vnni": "AVX-VNNI",
    "amx_int8": "AMX-INT8", "asimd": "NEON", "neon": "NEON", "asimddp": "dot product", "i8mm": "I8MM",
}
X86 = ("x86_64", "amd64", "i386", "i486", "i586", "i686", "x86")

# (class, int8 expected faster than float, why): first whose flag the CPU has
X86_CLASSES = (
    ("amx_int8", "x86-amx", True, "AMX int8 tiles and VNNI: int8 dot products in hardware"),
    ("avx512_vnni", "x86-avx512-vnni", True, "AVX-512 VNNI: int8 dot products in hardware (measured 2.46x faster "
                                             "than float on the reference CNN)"),
    ("avx_vnni", "x86-avx-vnni", True, "AVX-VNNI: int8 dot products in hardware (256-bit)"),
    ("avx512bw", "x86-avx512", True, "AVX-512BW int8 kernels without VNNI: usually faster than float, by less"),
    ("avx2", "x86-avx2", False, "AVX2 without VNNI: int8 needs multi-instruction multiply-adds; the reference CNN ran "
                                "143 us int8 vs 93 us float"),
)
ARM_CLASSES = (
    ("i8mm", "arm-i8mm", True, "Arm I8MM and dot product: int8 matrix multiply in hardware"),
    ("asimddp", "arm-dotprod", True, "Arm dot product (SDOT): int8 dot products in hardware"),
    ("asimd", "arm-neon", True, "NEON without dot product: int8 multiply-accumulate, usually faster than float, "
                                "by less than with SDOT"),
    ("neon", "arm-neon", True, "NEON without dot product: int8 multiply-accumulate, usually faster than float, "
                               "by less than with SDOT"),
)
# (CPU implementer, CPU part) -> core name, for Arm CPUs whose cpuinfo has no model name
ARM_PARTS = {
    ("0x41", "0xd03"): "Cortex-A53", ("0x41", "0xd04"): "Cortex-A35", ("0x41", "0xd05"): "Cortex-A55",
    ("0x41", "0xd07"): "Cortex-A57", ("0x41", "0xd08"): "Cortex-A72", ("0x41", "0xd09"): "Cortex-A73",
    ("0x41", "0xd0a"): "Cortex-A75", ("0x41", "0xd0b"): "Cortex-A76", ("0x41", "0xd0c"): "Neoverse-N1",
    ("0x41", "0xd0d"): "Cortex-A77", ("0x41", "0xd41"): "Cortex-A78", ("0x41", "0xd40"): "Neoverse-V1",
    ("0x41", "0xd44"): "Cortex-X1", ("0x41", "0xd46"): "Cortex-A510", ("0x41", "0xd47"): "Cortex-A710",
    ("0x41", "0xd49"): "Neoverse-N2", ("0x41", "0xd4f"): "Neoverse-V2", ("0x41", "0xc07"): "Cortex-A7",
    ("0x41", "0xc0f"): "Cortex-A15", ("0x41", "0xb76"): "ARM1176",
}


def _fields(text: str) -> dict[str, str]:
    """``key: value`` pairs, lower-case keys, the first occurrence of each (the first CPU)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() not in out:
            out[key.strip().lower()] = value.strip()
    return out


def cpu_model_of(cpuinfo: str) -> str:
    """The CPU's name from cpuinfo text: ``model name``, else the Arm core from ``CPU part``,
    with the board (``Model``/``Hardware``) when the text names one; ``unknown CPU`` otherwise."""
    f = _fields(cpuinfo)
    name = f.get("model name") or f.get("cpu model") or f.get("processor name")
    if name and name.lower().startswith("armv") and (f.get("cpu implementer"), f.get("cpu part")) in ARM_PARTS:
        name = None  # "ARMv7 Processor rev 4 (v7l)" says less than the core name
    core = ARM_PARTS.get((f.get("cpu implementer", ""), f.get("cpu part", "")))
    board = f.get("model") if f.get("model", "").strip() and not f.get("model", "").isdigit() else f.get("hardware")
    parts = [p for p in (name or core, board) if p]
    return " / ".join(parts) or "unknown CPU"


def cpu_class(cpuinfo: str, machine: str) -> dict[str, Any]:
    """The CPU class of a machine from its ``/proc/cpuinfo`` text and ``platform.machine()``.

    Returns ``{"model", "arch", "features", "class", "int8_expected_faster", "reason"}``:
    ``features`` are the :data:`INT8_FEATURES` labels the CPU has; ``class`` is e.g.
    ``x86-avx512-vnni``, ``x86-avx2``, ``arm-dotprod``, ``arm-neon``.
    """
    flags = cpu_flags(cpuinfo)
    arch = (machine or "").lower() or "unknown"
    features = list(dict.fromkeys(label for f, label in INT8_FEATURES.items() if f in flags))
    base = {"model": cpu_model_of(cpuinfo), "arch": arch, "features": features}
    if not flags:
        return {**base, "class": f"{arch}-unknown", "int8_expected_faster": False,
                "reason": "CPU flags unreadable: int8 speed unknown"}
    if arch in X86 or "sse2" in flags:
        table, fallback = X86_CLASSES, ("x86-sse", "no AVX2: int8 kernels fall back to SSE and run slowly")
    elif arch.startswith(("arm", "aarch64")) or flags & {"asimd", "neon", "fp", "vfp"}:
        table, fallback = ARM_CLASSES, ("arm-novector", "no NEON: int8 and float both run scalar code")
    else:
        return {**base, "class": f"{arch}-generic", "int8_expected_faster": False,
                "reason": f"no int8 kernel data for {arch}"}
    for flag, name, faster, why in table:
        if flag in flags:
            return {**base, "class": name, "int8_expected_faster": faster, "reason": why}
    return {**base, "class": fallback[0], "int8_expected_faster": False, "reason": fallback[1]}


def same_cpu_class(a: dict[str, Any], b: dict[str, Any]) -> tuple[bool, str]:
    """Whether latencies measured on CPU ``a`` stand for CPU ``b`` (both :func:`cpu_class` results),
    and why: the int8/float ratio differs between classes, so a gate compares within one class."""
    if a["class"] == b["class"]:
        return True, f"both {a['class']} ({a['model']}; {b['model']})"
    return False, (f"{a['class']} ({a['model']}) and {b['class']} ({b['model']}) are different CPU classes: "
                   f"int8 {'faster' if a['int8_expected_faster'] else 'not faster'} than float on the first, "
                   f"{'faster' if b['int8_expected_faster'] else 'not faster'} on the second; "
                   "latency from one does not stand for the other")


def host_cpu(cpuinfo_path: str = "/proc/cpuinfo") -> dict[str, Any]:
    """:func:`cpu_class` of this machine (an unreadable cpuinfo gives the ``-unknown`` class)."""
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        text = ""
    return cpu_class(text, platform.machine())


def cpu_summary(cpu: dict[str, Any]) -> dict[str, Any]:
    """What a latency figure records about its CPU: model, class, features, int8 expectation and why."""
    return {k: cpu[k] for k in ("model", "class", "features", "int8_expected_faster", "reason") if k in cpu}


def describe_cpu(cpu: dict[str, Any], threads: int | None = None) -> str:
    """One line for reports: ``Intel Xeon ... (x86-avx2: AVX2, FMA), 1 thread``."""
    feats = ", ".join(cpu.get("features") or []) or "no int8 features"
    text = f"{cpu.get('model', 'unknown CPU')} ({cpu.get('class', 'unknown')}: {feats})"
    if threads is not None:
        text += f", {threads} thread{'s' if threads != 1 else ''}"
    return text
