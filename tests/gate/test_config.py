"""GateConfig: parsing of user spellings, key-path errors, to/from dict."""
from __future__ import annotations

import dataclasses

import pytest

from edgekit.errors import UsageError
from edgekit.gate import GateConfig, LatencyRatio, parse_size


@pytest.mark.parametrize("text, expected", [
    ("40KB", 40_000), ("40KiB", 40_960), ("40 kb", 40_000), ("1.5MB", 1_500_000), ("2MiB", 2 * 1024 ** 2),
    ("512B", 512), ("512", 512), (40_000, 40_000), ("0.5KiB", 512),
])
def test_parse_size_units(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["40kg", "KB", "-1KB", "4O KB", "", True, "1e3KB"])
def test_parse_size_rejects_with_one_line(bad):
    with pytest.raises(UsageError) as e:
        parse_size(bad, "--max-size")
    msg = str(e.value)
    assert msg.startswith("--max-size") and "\n" not in msg and repr(bad) in msg


def test_from_dict_canonical_units():
    cfg = GateConfig.from_dict({
        "target": "tflite-int8", "max_size": "40KB", "max_gzip_size": "30KiB", "max_latency_ms": "50us",
        "max_accuracy_drop": "0.5pt", "min_accuracy": "97%", "min_agreement": "99%", "max_size_growth": "5%",
        "max_accuracy_fall": 0.25, "max_latency_ratio": "tflite-int8:tflite=0.8",
    })
    assert cfg.targets == ("tflite-int8",)
    assert cfg.max_size == 40_000 and cfg.max_gzip_size == 30_720
    assert cfg.max_latency_ms == pytest.approx(0.05)
    assert cfg.max_accuracy_drop == 0.5 and cfg.min_accuracy == pytest.approx(0.97)
    assert cfg.min_agreement == 99.0 and cfg.max_size_growth == 5.0 and cfg.max_accuracy_fall == 0.25
    assert cfg.max_latency_ratio == (LatencyRatio("tflite-int8", "tflite", 0.8),)
    assert cfg.has_checks and cfg.needs_baseline


@pytest.mark.parametrize("value", [0.97, "0.97", 97, "97", "97%"])
def test_min_accuracy_fraction_or_percent(value):
    assert GateConfig.from_dict({"min_accuracy": value}).min_accuracy == pytest.approx(0.97)


@pytest.mark.parametrize("value", [
    "a:b=0.8", ["a:b=0.8"], {"a:b": 0.8}, {"a": {"b": 0.8}}, {"a:b": "0.8x"},
])
def test_latency_ratio_spellings(value):
    assert GateConfig.from_dict({"max_latency_ratio": value}).max_latency_ratio == (LatencyRatio("a", "b", 0.8),)


@pytest.mark.parametrize("value, needle", [
    ("a:b", "TARGET:OTHER=RATIO"), ("ab=0.8", "two targets"), ("a:a=0.8", "itself"), ("a:b=0", "positive"),
    ("a:b=fast", "number"), (3, "TARGET:OTHER=RATIO"),
])
def test_latency_ratio_errors(value, needle):
    with pytest.raises(UsageError, match=needle):
        GateConfig.from_dict({"max_latency_ratio": value})


def test_round_trip():
    cfg = GateConfig.from_dict({"targets": ["tflite-int8", "onnx"], "max_size": "40KB", "latency_stat": "p90",
                                "max_latency_ms": 0.05, "min_agreement": 99, "baseline": "base/manifest.json",
                                "max_size_growth": "5%", "max_latency_ratio": {"tflite-int8:tflite": 0.8}})
    d = cfg.to_dict()
    assert d["max_size"] == 40_000 and d["max_latency_ratio"] == {"tflite-int8:tflite": 0.8}
    assert GateConfig.from_dict(d) == cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.max_size = 1  # type: ignore[misc]


def test_unknown_key_names_path_and_suggestion():
    with pytest.raises(UsageError) as e:
        GateConfig.from_dict({"max_sise": "40KB"})
    assert "'gates.max_sise'" in str(e.value) and 'Did you mean "max_size"' in str(e.value)


@pytest.mark.parametrize("data, needle", [
    ({"max_size": "big"}, "gates.max_size must be a size"),
    ({"max_latency_ms": -1}, "gates.max_latency_ms must not be negative"),
    ({"max_accuracy_drop": "half"}, "gates.max_accuracy_drop must be a number"),
    ({"min_accuracy": 150}, "gates.min_accuracy"),
    ({"min_agreement": 101}, "min_agreement must be a percent"),
    ({"latency_stat": "p99"}, "gates.latency_stat must be one of: p50, p90"),
    ({"targets": [1, 2]}, "gates.targets must be a target name"),
    ({"baseline": 3}, "gates.baseline must be the path"),
])
def test_bad_values_name_the_key(data, needle):
    with pytest.raises(UsageError, match=needle):
        GateConfig.from_dict(data)


def test_cli_style_key_names():
    with pytest.raises(UsageError, match="^--max-gzip-size must be a size"):
        GateConfig.from_dict({"max_gzip_size": "lots"}, path="--")


def test_empty_config_has_no_checks():
    assert not GateConfig().has_checks
    assert not GateConfig.from_dict(None).has_checks
    assert GateConfig(max_latency_ratio=(LatencyRatio("a", "b", 1.0),)).has_checks
    with pytest.raises(UsageError, match="mapping"):
        GateConfig.from_dict(["max_size"])  # type: ignore[arg-type]
