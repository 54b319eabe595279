"""CI gates: size, latency and accuracy limits checked against a run's ``manifest.json``.

    >>> from edgekit.gate import GateConfig, run_gates
    >>> report = run_gates("run/manifest.json", GateConfig(targets=("tflite-int8",), max_size=40_000))
    >>> report.raise_if_failed()          # GateFailed (exit code 1) when a check failed

Only the manifest is read (TensorFlow is never imported), so gates start fast.
"""
from edgekit.gate.checks import Check, format_value
from edgekit.gate.config import GateConfig, LatencyRatio, parse_size
from edgekit.gate.junit import junit_xml, write_junit
from edgekit.gate.runner import GateReport, run_gates, validated_targets

__all__ = ["Check", "GateConfig", "GateReport", "LatencyRatio", "format_value", "junit_xml", "parse_size",
           "run_gates", "validated_targets", "write_junit"]
