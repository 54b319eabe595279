"""Latency against a baseline only within one CPU class; latency limits on a device."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edgekit.cli.main import cli
from edgekit.errors import UsageError
from edgekit.gate import GateConfig, run_gates
from edgekit.gate.junit import junit_xml
from tests.gate.fabricate import make_run

AVX2 = {"model": "Intel(R) Core(TM) i7-6700", "class": "x86-avx2", "features": ["AVX2", "FMA"],
        "int8_expected_faster": False}
VNNI = {"model": "AMD EPYC 9454", "class": "x86-avx512-vnni", "features": ["AVX2", "AVX-512", "AVX-512 VNNI"],
        "int8_expected_faster": True}
DEVICE = "ssh://pi@raspberrypi"


def _run(root, cpu, p50=0.041, devices=None):
    t = {"cpu": cpu, "latency_p50_ms": p50}
    if devices:
        t["devices"] = devices
    return make_run(root, targets={"tflite-int8": t}, stages=("export", "validate"))


def test_baseline_of_another_cpu_class_is_skipped_with_the_reason(tmp_path):
    base = _run(tmp_path / "base", AVX2, p50=0.143)
    new = _run(tmp_path / "new", VNNI, p50=0.058)
    report = run_gates(new, {"target": "tflite-int8", "max_latency_growth": "5%"}, baseline=base)
    (c,) = report.checks
    assert c.skipped and c.passed and c.result == "SKIP" and c.measured is None
    assert "x86-avx2" in c.detail and "x86-avx512-vnni" in c.detail and "different CPU classes" in c.detail
    assert report.passed and "1 skipped" in report.summary()
    assert 'skipped="1"' in junit_xml(report) and "<skipped" in junit_xml(report)


def test_baseline_of_the_same_cpu_class_is_compared(tmp_path):
    base = _run(tmp_path / "base", AVX2, p50=0.100)
    new = _run(tmp_path / "new", dict(AVX2, model="Intel(R) Xeon(R) E5-2680 v4"), p50=0.120)
    report = run_gates(new, {"target": "tflite-int8", "max_latency_growth": "10%"}, baseline=base)
    (c,) = report.checks
    assert not c.skipped and not c.passed and c.measured == pytest.approx(20.0)
    assert "both x86-avx2" in c.detail
    ok = run_gates(new, {"target": "tflite-int8", "max_latency_growth": "25%"}, baseline=base)
    assert ok.passed and ok.checks[0].measured == pytest.approx(20.0)


def test_baseline_without_a_cpu_class_is_skipped(tmp_path):
    base = make_run(tmp_path / "base", stages=("export", "validate"))  # written before CPU classes were recorded
    new = _run(tmp_path / "new", AVX2)
    (c,) = run_gates(new, {"target": "tflite-int8", "max_latency_growth": 5}, baseline=base).checks
    assert c.skipped and "records no CPU class" in c.detail


def test_cli_warns_about_a_skipped_latency_comparison(tmp_path):
    base = _run(tmp_path / "base", AVX2, p50=0.143)
    new = _run(tmp_path / "new", VNNI, p50=0.058)
    r = CliRunner().invoke(cli, ["gate", str(new), "--target", "tflite-int8", "--baseline", str(base),
                                 "--max-latency-growth", "5%"])
    assert r.exit_code == 0, r.output
    assert "Warning: tflite-int8 latency_growth not checked: skipped: baseline on x86-avx2" in r.output
    assert "SKIP" in r.output


def test_device_latency_limit(tmp_path):
    dev = {DEVICE: {"latency_p50_ms": 0.150, "latency_p90_ms": 0.2, "status": "ok",
                    "facts": {"cpu": {"model": "Cortex-A72 / Raspberry Pi 4", "class": "arm-neon"}}}}
    man = _run(tmp_path / "run", VNNI, devices=dev)
    cfg = GateConfig.from_dict({"max_device_latency": [f"tflite-int8@{DEVICE}=200us"]})
    assert cfg.max_device_latency[0].device == DEVICE and cfg.max_device_latency[0].max_ms == pytest.approx(0.2)
    assert GateConfig.from_dict(cfg.to_dict()) == cfg
    (c,) = run_gates(man, cfg).checks
    assert c.passed and c.measured == pytest.approx(0.150) and "arm-neon" in c.detail
    r = CliRunner().invoke(cli, ["gate", str(man), "--target", "tflite-int8", "--json",
                                 "--max-device-latency", f"tflite-int8@{DEVICE}=0.1"])
    assert r.exit_code == 1
    (c,) = json.loads(r.output[:r.output.rindex("}") + 1])["checks"]
    assert c["name"] == "device_latency" and not c["passed"]
    with pytest.raises(UsageError, match="was not validated on 'adb://X'.*it was on: ssh://pi@raspberrypi"):
        run_gates(man, {"max_device_latency": "tflite-int8@adb://X=1"})


def _pair(root, int8_cpu, float_cpu, int8_p50=0.041, float_p50=0.112):
    return make_run(root, targets={"tflite-int8": {"cpu": int8_cpu, "latency_p50_ms": int8_p50},
                                   "tflite": {"cpu": float_cpu, "latency_p50_ms": float_p50}},
                    stages=("export", "validate"))


def test_latency_ratio_across_cpu_classes_is_skipped_naming_both(tmp_path):
    # int8 validated on a VNNI host, float on an AVX2 one: 0.041/0.112 would pass 0.8 on a mix of machines
    man = _pair(tmp_path / "run", VNNI, AVX2)
    report = run_gates(man, {"target": "tflite-int8", "max_latency_ratio": "tflite-int8:tflite=0.8"})
    (c,) = report.checks
    assert c.skipped and c.result == "SKIP" and c.measured is None
    assert "x86-avx512-vnni" in c.detail and "x86-avx2" in c.detail and "different CPU classes" in c.detail
    r = CliRunner().invoke(cli, ["gate", str(man), "--target", "tflite-int8",
                                 "--max-latency-ratio", "tflite-int8:tflite=0.1"])
    assert r.exit_code == 0, r.output  # 0.37x would fail 0.1 if compared
    assert "Warning: tflite-int8 latency_ratio not checked: skipped:" in r.output and "x86-avx2" in r.output


def test_latency_ratio_within_one_cpu_class_is_compared(tmp_path):
    man = _pair(tmp_path / "run", AVX2, dict(AVX2, model="Intel(R) Xeon(R) E5-2680 v4"), 0.100, 0.080)
    (c,) = run_gates(man, {"target": "tflite-int8", "max_latency_ratio": "tflite-int8:tflite=0.8"}).checks
    assert not c.skipped and not c.passed and c.measured == pytest.approx(1.25)


def test_latency_ratio_with_one_class_unrecorded_is_skipped(tmp_path):
    man = _pair(tmp_path / "run", AVX2, None)
    (c,) = run_gates(man, {"target": "tflite-int8", "max_latency_ratio": "tflite-int8:tflite=0.8"}).checks
    assert c.skipped and "tflite records no CPU class" in c.detail
