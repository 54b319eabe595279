"""CPU classes from recorded /proc/cpuinfo samples, and the same-class rule a latency gate uses."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.devices.isa import cpu_class, same_cpu_class

SAMPLES = Path(__file__).parent / "cpuinfo"


def _cls(name: str, machine: str) -> dict:
    return cpu_class((SAMPLES / name).read_text(), machine)


@pytest.mark.parametrize("sample, machine, model, cls, faster, features", [
    ("intel-haswell-avx2.txt", "x86_64", "Intel(R) Core(TM) i7-4770 CPU @ 3.40GHz", "x86-avx2", False,
     ["AVX2", "FMA"]),
    ("xeon-cascadelake-avx512-vnni.txt", "x86_64", "Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz",
     "x86-avx512-vnni", True, ["AVX2", "FMA", "AVX-512", "AVX-512 VNNI"]),
    ("rpi5-cortex-a76-dotprod.txt", "aarch64", "Cortex-A76 / Raspberry Pi 5 Model B Rev 1.0", "arm-dotprod", True,
     ["NEON", "dot product"]),
    ("rpi3-cortex-a53-armv7.txt", "armv7l", "Cortex-A53 / Raspberry Pi 3 Model B Rev 1.2", "arm-neon", True,
     ["NEON"]),
])
def test_recorded_cpuinfo_samples(sample, machine, model, cls, faster, features):
    c = _cls(sample, machine)
    assert (c["model"], c["arch"], c["class"], c["int8_expected_faster"], c["features"]) == (
        model, machine, cls, faster, features)
    assert c["reason"]


def test_avx2_reason_quotes_the_measurement_and_other_classes():
    assert "143 us int8 vs 93 us float" in _cls("intel-haswell-avx2.txt", "x86_64")["reason"]
    amx = cpu_class("model name : Xeon w9\nflags : sse2 avx2 avx512f avx512bw avx512_vnni amx_int8\n", "x86_64")
    assert amx["class"] == "x86-amx"
    assert cpu_class("flags : sse2 avx2 avx_vnni\n", "x86_64")["class"] == "x86-avx-vnni"
    assert cpu_class("flags : sse2 sse4_2\n", "x86_64")["class"] == "x86-sse"
    assert cpu_class("Features : fp asimd asimddp i8mm\n", "aarch64")["class"] == "arm-i8mm"
    unknown = cpu_class("", "riscv64")
    assert unknown["class"] == "riscv64-unknown" and unknown["model"] == "unknown CPU"


def test_same_cpu_class():
    avx2, vnni = _cls("intel-haswell-avx2.txt", "x86_64"), _cls("xeon-cascadelake-avx512-vnni.txt", "x86_64")
    ok, why = same_cpu_class(vnni, dict(vnni, model="another Xeon"))
    assert ok and why.startswith("both x86-avx512-vnni")
    ok, why = same_cpu_class(avx2, vnni)
    assert not ok
    assert why.startswith("x86-avx2 (Intel(R) Core(TM) i7-4770 CPU @ 3.40GHz) and x86-avx512-vnni")
    assert "int8 not faster than float on the first, faster on the second" in why
    pi3, pi5 = _cls("rpi3-cortex-a53-armv7.txt", "armv7l"), _cls("rpi5-cortex-a76-dotprod.txt", "aarch64")
    assert not same_cpu_class(pi3, pi5)[0]
