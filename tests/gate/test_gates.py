"""run_gates on realistic hand-made run folders: real files, manifests written by update_manifest."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgekit.artifacts import gzip_size
from edgekit.errors import GateFailed, InputError, UsageError
from edgekit.gate import Check, GateConfig, run_gates
from tests.gate.fabricate import TARGETS, edit_manifest, make_run

FULL = dict(targets=("tflite-int8",), max_size=40_000, max_gzip_size=30_000, max_latency_ms=0.05,
            max_accuracy_drop=0.5, min_accuracy=0.97, min_agreement=99.0, max_abs_diff=0.02)


@pytest.fixture()
def run(tmp_path) -> Path:
    return make_run(tmp_path / "run")


def by_name(report) -> dict[tuple[str, str], Check]:
    return {(c.name, c.target): c for c in report.checks}


def test_all_gates_pass_with_measured_values(run):
    report = run_gates(run, GateConfig(**FULL))
    assert report.passed and report.targets == ("tflite-int8",)
    c = by_name(report)
    int8 = run.parent / "model_int8.tflite"
    assert c["size", "tflite-int8"].measured == int8.stat().st_size == 36_200
    assert c["gzip_size", "tflite-int8"].measured == gzip_size(int8.read_bytes())
    assert c["latency_p50", "tflite-int8"].measured == pytest.approx(0.041)
    assert c["accuracy", "tflite-int8"].measured == pytest.approx(0.9722)
    assert c["accuracy_drop", "tflite-int8"].measured == pytest.approx(0.28)
    assert c["agreement", "tflite-int8"].measured == pytest.approx(99.44)
    assert c["max_abs_diff", "tflite-int8"].measured == pytest.approx(0.0117)
    assert [x.op for x in report.checks] == ["<=", "<=", "<=", ">=", "<=", ">=", "<="]
    assert report.raise_if_failed() is report
    assert report.summary() == "All 7 gates passed (tflite-int8)."


def test_failed_gate_names_measured_and_limit(run):
    report = run_gates(run, GateConfig(targets=("tflite-int8",), max_size=30_000, min_agreement=99.5))
    assert not report.passed
    assert [(c.name, c.passed) for c in report.checks] == [("size", False), ("agreement", False)]
    with pytest.raises(GateFailed) as e:
        report.raise_if_failed()
    assert e.value.exit_code == 1
    assert "2 of 2 gates failed" in str(e.value)
    assert "tflite-int8 size 36,200 B > 30,000 B" in str(e.value)
    assert "tflite-int8 agreement 99.44 % < 99.50 %" in str(e.value)


def test_limits_are_inclusive(run):
    assert run_gates(run, GateConfig(targets=("tflite-int8",), max_size=36_200)).passed
    assert not run_gates(run, GateConfig(targets=("tflite-int8",), max_size=36_199)).passed
    assert run_gates(run, GateConfig(targets=("tflite-int8",), min_agreement=99.44)).passed


def test_default_targets_are_every_validated_target(run):
    report = run_gates(run, GateConfig(max_size=130_000))
    assert report.targets == tuple(TARGETS)
    assert {c.target: c.measured for c in report.checks} == {n: float(t[1]) for n, t in TARGETS.items()}
    report = run_gates(run, GateConfig(max_size=100_000))
    assert [c.target for c in report.failed] == ["tflite", "onnx"]


def test_latency_stat_and_ratio(run):
    cfg = GateConfig.from_dict({"target": "tflite-int8", "latency_stat": "p90", "max_latency_ms": 0.045,
                                "max_latency_ratio": ["tflite-int8:tflite=0.4", "onnx:tflite=0.7"]})
    c = by_name(run_gates(run, cfg))
    assert c["latency_p90", "tflite-int8"].measured == pytest.approx(0.049)
    assert not c["latency_p90", "tflite-int8"].passed
    # ratios of p90: 0.049 / 0.131 and 0.102 / 0.131, both from the same run
    assert c["latency_ratio", "tflite-int8"].measured == pytest.approx(0.049 / 0.131)
    assert c["latency_ratio", "tflite-int8"].passed
    assert c["latency_ratio", "onnx"].measured == pytest.approx(0.102 / 0.131)
    assert not c["latency_ratio", "onnx"].passed  # 0.78 > 0.7
    assert "vs tflite" in c["latency_ratio", "onnx"].detail


def test_missing_metric_fails_the_check_instead_of_crashing(tmp_path):
    run = make_run(tmp_path / "run", targets={"tflite-int8": {"latency_p50_ms": None, "agreement_pct": "n/a"}})
    report = run_gates(run, GateConfig(targets=("tflite-int8",), max_latency_ms=1.0, min_agreement=90,
                                       max_latency_ratio=GateConfig.from_dict(
                                           {"max_latency_ratio": "tflite-int8:tflite=2"}).max_latency_ratio))
    assert not report.passed and all(c.measured is None for c in report.checks)
    assert report.checks[0].measured_text == "missing"
    assert "missing for one of the two" in report.checks[-1].detail


def test_unknown_target_lists_validated(run):
    with pytest.raises(UsageError) as e:
        run_gates(run, GateConfig(targets=("tflite-int9",), max_size=1))
    msg = str(e.value)
    assert "Unknown target 'tflite-int9'" in msg and "tflite, tflite-int8, onnx" in msg
    assert 'Did you mean "tflite-int8"' in msg
    with pytest.raises(UsageError, match="Unknown target 'edgetpu'.*max_latency_ratio"):
        run_gates(run, GateConfig.from_dict({"max_latency_ratio": "tflite-int8:edgetpu=1"}))


def test_no_limits_is_a_usage_error(run):
    with pytest.raises(UsageError, match="No gate limits given"):
        run_gates(run, GateConfig(targets=("tflite-int8",)))


def test_config_may_be_a_mapping(run):
    assert run_gates(run, {"target": "tflite-int8", "max_size": "40KB"}).passed


def test_manifest_dict_and_folder(run):
    man = json.loads(run.read_text())
    assert run_gates(man, GateConfig(max_size=200_000)).passed
    assert run_gates(run.parent, GateConfig(max_size=200_000)).manifest == str(run.parent)


# -- baseline ------------------------------------------------------------------------------
def test_baseline_size_growth_and_accuracy_fall(tmp_path):
    base = make_run(tmp_path / "base", targets={"tflite-int8": {"accuracy": 0.980}})
    new = make_run(tmp_path / "new", size_scale=1.08)
    cfg = GateConfig(targets=("tflite-int8",), max_size_growth=5.0, max_accuracy_fall=0.5)
    report = run_gates(new, cfg, baseline=base)
    c = by_name(report)
    growth = 100 * (int(36_200 * 1.08) - 36_200) / 36_200
    assert c["size_growth", "tflite-int8"].measured == pytest.approx(growth) and growth > 5
    assert not c["size_growth", "tflite-int8"].passed
    assert c["accuracy_fall", "tflite-int8"].measured == pytest.approx(100 * (0.980 - 0.9722))
    assert not c["accuracy_fall", "tflite-int8"].passed
    assert report.baseline == str(base)
    relaxed = cfg.replace(max_size_growth=10.0, max_accuracy_fall=1.0, baseline=str(base))
    assert run_gates(new, relaxed).passed  # baseline taken from the config


def test_baseline_needs_only_its_manifest(tmp_path):
    base = make_run(tmp_path / "base")
    for f in base.parent.iterdir():
        if f.name != "manifest.json":
            f.unlink()
    new = make_run(tmp_path / "new")
    report = run_gates(new, GateConfig(max_size_growth=0.0), baseline=base)
    assert report.passed and all(c.measured == 0.0 for c in report.checks)


def test_baseline_usage_errors(tmp_path):
    run = make_run(tmp_path / "run")
    with pytest.raises(UsageError, match="baseline manifest; give one with --baseline"):
        run_gates(run, GateConfig(max_size_growth=5.0))
    with pytest.raises(UsageError, match="no baseline limit"):
        run_gates(run, GateConfig(max_size=1), baseline=run)
    base = make_run(tmp_path / "base")
    edit_manifest(base, lambda m: m["stages"]["validate"]["metrics"]["targets"].pop("onnx"))
    with pytest.raises(InputError, match="has no validated target 'onnx'; it validated: tflite, tflite-int8"):
        run_gates(run, GateConfig(max_size_growth=5.0), baseline=base)


# -- bad manifests -------------------------------------------------------------------------
def test_tampered_artifact_is_an_input_error(run):
    f = run.parent / "model_int8.tflite"
    data = bytearray(f.read_bytes())
    data[100] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(InputError) as e:
        run_gates(run, GateConfig(max_size=1_000_000))
    assert "sha256 mismatch): model_int8.tflite" in str(e.value) and "\n" not in str(e.value)
    assert run_gates(run, GateConfig(max_size=1_000_000), verify=False).passed


def test_missing_artifact_is_an_input_error(run):
    (run.parent / "model.onnx").unlink()
    with pytest.raises(InputError, match=r"missing: model\.onnx"):
        run_gates(run, GateConfig(max_size=1_000_000))


@pytest.mark.parametrize("content, needle", [
    ('{"format": "something-else/1"}', "is not an edgekit manifest"),
    ("not json", "is not a readable JSON manifest"),
    ("[1, 2]", "is not an edgekit manifest"),
])
def test_foreign_manifest(tmp_path, content, needle):
    p = tmp_path / "manifest.json"
    p.write_text(content)
    with pytest.raises(InputError, match=needle):
        run_gates(p, GateConfig(max_size=1))


def test_missing_manifest(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        run_gates(tmp_path / "nope" / "manifest.json", GateConfig(max_size=1))


def test_manifest_without_validate_stage(tmp_path):
    run = make_run(tmp_path / "run", stages=("train", "export"))
    with pytest.raises(InputError, match="has no validate stage.*Stages present: train, export"):
        run_gates(run, GateConfig(max_size=1))


@pytest.mark.parametrize("edit", [
    lambda m: m["stages"]["validate"]["metrics"].__setitem__("targets", ["tflite"]),
    lambda m: m["stages"]["validate"]["metrics"]["targets"].__setitem__("tflite", 3),
    lambda m: m.__setitem__("stages", []),
    lambda m: m["artifacts"].append({"kind": "tflite"}),
])
def test_malformed_manifest(run, edit):
    edit_manifest(run, edit)
    with pytest.raises(InputError, match="malformed|no stages mapping"):
        run_gates(run, GateConfig(max_size=1))


def test_report_to_dict_round_trips(run):
    report = run_gates(run, GateConfig(**FULL))
    d = json.loads(json.dumps(report.to_dict()))
    assert d["passed"] is True and len(d["checks"]) == 7
    assert [Check.from_dict(c) for c in d["checks"]] == report.checks
    assert GateConfig.from_dict(d["config"]) == report.config
    md = report.to_markdown()
    assert md.count("✅ PASS") == 7 and "| size | tflite-int8 | 36,200 B | <= 40,000 B |" in md


# -- found by the CLI fuzzer (tests/fuzz) --------------------------------------------------
@pytest.mark.parametrize("edit", [
    lambda m: m["stages"]["validate"].__setitem__("metrics", "oops"),
    lambda m: m.__setitem__("artifacts", 7),
    lambda m: m["artifacts"].append({"path": 3, "sha256": "x"}),
    lambda m: m["artifacts"].append("model.onnx"),
])
def test_malformed_manifest_fields_are_input_errors(run, edit):
    edit_manifest(run, edit)
    with pytest.raises(InputError, match="malformed") as e:
        run_gates(run, GateConfig(max_size=1))
    assert "\n" not in str(e.value)


def test_deeply_nested_manifest_is_an_input_error(tmp_path):
    p = tmp_path / "manifest.json"
    p.write_text('{"format": "edgekit-manifest/1", "stages": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(InputError, match="nested too deeply"):
        run_gates(p, GateConfig(max_size=1))


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 10**400, "12"])
def test_non_finite_measurements_fail_their_check(run, value):
    edit_manifest(run, lambda m: m["stages"]["validate"]["metrics"]["targets"]["tflite"].__setitem__("bytes", value))
    report = run_gates(run, GateConfig(targets=("tflite",), max_size=10**9), verify=False)
    (c,) = report.checks
    assert not c.passed and c.measured is None and c.measured_text == "missing"
    assert "size" in report.summary() and "\n" not in report.summary()


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "9" * 400 + "MB", "9" * 400])
def test_non_finite_size_limits_are_usage_errors(value):
    with pytest.raises(UsageError, match="finite size"):
        GateConfig.from_dict({"max_size": value})


def test_format_value_of_non_finite_numbers():
    from edgekit.gate.checks import format_value

    assert format_value(float("inf"), "B") == "inf B" and format_value(float("nan"), "ms") == "nan ms"
    assert format_value(0.0430, "ms") == "43.0 us"


def test_accuracy_drop_vs_trained_sees_what_compression_lost(tmp_path):
    """With a compress stage, the reference is the compressed model: int8 loses 0.28 pt
    against it, but 1.28 pt against the model as trained (98.50 %)."""
    man = make_run(tmp_path / "run")
    edit_manifest(man,
                  lambda m: m["stages"]["train"]["metrics"].update(test_accuracy=0.9850))
    cfg = GateConfig(targets=("tflite-int8",), max_accuracy_drop=0.5, max_accuracy_drop_vs_trained=1.0)
    report = run_gates(man, cfg, verify=False)
    by = {c.name: c for c in report.checks}
    assert by["accuracy_drop"].passed
    vs = by["accuracy_drop_vs_trained"]
    assert not vs.passed and vs.measured == pytest.approx(1.28) and "98.50" in vs.detail
    ok = run_gates(man, cfg.replace(max_accuracy_drop_vs_trained=1.5), verify=False)
    assert all(c.passed for c in ok.checks)


def test_accuracy_drop_vs_trained_needs_a_train_stage(tmp_path):
    man = make_run(tmp_path / "run", stages=("export", "validate"))
    with pytest.raises(UsageError, match="needs a manifest with a train stage"):
        run_gates(man, GateConfig(max_accuracy_drop_vs_trained=1.0), verify=False)
    assert GateConfig.from_dict({"max_accuracy_drop_vs_trained": "0.5pt"}).max_accuracy_drop_vs_trained == 0.5
