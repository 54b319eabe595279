"""JUnit XML: one testcase per check, failure elements, atomic write."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from edgekit.gate import GateConfig, junit_xml, run_gates, write_junit
from tests.gate.fabricate import make_run


def test_junit_counts_cases_and_failures(tmp_path):
    run = make_run(tmp_path / "run")
    report = run_gates(run, GateConfig.from_dict({"target": "tflite-int8", "max_size": "30KB", "min_agreement": 99,
                                                  "max_latency_ratio": "tflite-int8:tflite=0.5"}))
    out = write_junit(report, tmp_path / "ci" / "gates.xml")
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "3" and root.get("failures") == "1"
    suite = root.find("testsuite")
    assert suite.get("tests") == "3" and suite.get("failures") == "1" and suite.get("errors") == "0"
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props == {"manifest": str(run), "targets": "tflite-int8"}
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("edgekit.gate.tflite-int8", "size"), ("edgekit.gate.tflite-int8", "agreement"),
        ("edgekit.gate.tflite-int8", "latency_ratio")]
    failure = cases[0].find("failure")
    assert failure is not None and failure.get("type") == "GateFailed"
    assert failure.get("message") == "tflite-int8 size 36,200 B > 30,000 B"
    assert "limit <= 30,000 B" in failure.text
    assert cases[1].find("failure") is None and "99.44 %" in cases[1].find("system-out").text
    assert sorted(p.name for p in out.parent.iterdir()) == ["gates.xml"]  # no temp files left


def test_junit_escapes_and_parses(tmp_path):
    run = make_run(tmp_path / "run", targets={"tflite-int8": {"latency_p50_ms": None}})
    xml = junit_xml(run_gates(run, GateConfig(targets=("tflite-int8",), max_latency_ms=0.05)))
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    case = ET.fromstring(xml.split("\n", 1)[1]).find("testsuite/testcase")
    assert "latency_p50" in case.find("failure").get("message") and "&lt;=" in xml
