"""`edgekit devices`: CPU features, GPUs, TPUs and the strategy auto picks."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from edgekit.cli.main import cli
from edgekit.train.devices import cpu_features, cpu_flags, cpu_model

X86 = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz
flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni amx_tile amx_bf16
"""
ARM = """processor\t: 0
Features\t: fp asimd evtstrm aes crc32 asimddp sve bf16
CPU implementer\t: 0x41
"""


def test_cpu_features_from_cpuinfo():
    assert "avx512_vnni" in cpu_flags(X86)
    assert cpu_features(X86) == ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                                 "avx512_vnni", "amx_tile", "amx_bf16")
    assert cpu_model(X86).startswith("Intel(R) Xeon(R) Platinum 8380")
    assert cpu_features(ARM) == ("asimd", "asimddp", "bf16", "sve")
    assert cpu_features("") == ()


def test_devices_help():
    r = CliRunner().invoke(cli, ["devices", "--help"])
    assert r.exit_code == 0 and "auto" in r.output and "--json" in r.output


def test_devices_reports_this_machine():
    r = CliRunner().invoke(cli, ["devices"])
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output
    lines = dict(line.split(None, 1) for line in r.output.splitlines() if line.strip())
    assert {"cpu", "features", "gpus", "tpus", "auto", "precision", "tensorflow"} <= set(lines)
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if "avx2" in cpu_flags(text):
        assert "AVX2" in lines["features"]
    if lines["gpus"] == "none" and lines["tpus"] == "none":
        assert lines["auto"] == "--strategy auto -> default"
        assert lines["precision"] == "--mixed-precision -> mixed_bfloat16"


def test_devices_json():
    r = CliRunner().invoke(cli, ["devices", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["auto_strategy"] in ("default", "mirrored", "tpu")
    assert isinstance(d["cpu_features"], dict) and d["cpu_cores"] >= 1
    assert d["auto_strategy"] == ("tpu" if d["tpus"] else "mirrored" if d["gpus"] else "default")
