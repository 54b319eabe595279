"""JUnit XML for CI systems (GitHub, GitLab, Jenkins): one testcase per gate check."""
from __future__ import annotations

import datetime as _dt
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from edgekit.artifacts import write_bytes
from edgekit.gate.runner import GateReport


def junit_xml(report: GateReport, suite: str = "edgekit.gate") -> str:
    """The report as a JUnit XML document (``<testsuites>`` with one ``<testsuite>``)."""
    failures = len(report.failed)
    root = ET.Element("testsuites", name=suite, tests=str(len(report.checks)), failures=str(failures),
                      errors="0", time="0")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(report.checks)), failures=str(failures),
                       errors="0", skipped=str(sum(c.skipped for c in report.checks)), time="0",
                       timestamp=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    props = ET.SubElement(ts, "properties")
    for key, value in (("manifest", report.manifest), ("baseline", report.baseline),
                       ("targets", ",".join(report.targets))):
        if value:
            ET.SubElement(props, "property", name=key, value=str(value))
    for c in report.checks:
        case = ET.SubElement(ts, "testcase", classname=f"{suite}.{c.target}", name=c.name, time="0")
        text = f"measured {c.measured_text}, limit {c.limit_text}" + (f" ({c.detail})" if c.detail else "")
        if c.skipped:
            ET.SubElement(case, "skipped", message=c.detail)
        elif c.passed:
            ET.SubElement(case, "system-out").text = text
        else:
            fail = ET.SubElement(case, "failure", message=c.describe(), type="GateFailed")
            fail.text = text
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(report: GateReport, path: str | os.PathLike, suite: str = "edgekit.gate") -> Path:
    """Write ``junit_xml(report)`` to ``path`` atomically."""
    return write_bytes(path, junit_xml(report, suite).encode("utf-8"))
