"""edgekit benchmark: one table; a target that cannot be built shows why instead of failing it."""
from __future__ import annotations

import csv

from click.testing import CliRunner

from edgekit.cli.main import cli
from edgekit.export import ExportConfig
from edgekit.export.bench import benchmark
from edgekit.export.edgetpu import compiler_path
from edgekit.validate import ValidateConfig


def test_benchmark_table_with_a_failing_target(trained_cnn, digits, tmp_path):
    config = ExportConfig(representative_samples=20, arena_size=1000)  # micro cannot fit 1000 bytes
    rows = benchmark(trained_cnn[1], digits, tmp_path, ["tflite", "edgetpu", "micro"], config=config,
                     validate_config=ValidateConfig(runs=5, probe=False))
    by = {r["target"]: r for r in rows}
    assert by["tflite"]["status"] == "ok" and by["tflite"]["agreement_pct"] == 100.0
    assert by["tflite"]["bytes"] > by["edgetpu"]["bytes"] > 0
    assert by["micro"]["status"].startswith("export failed") and "arena of at least" in by["micro"]["status"]
    assert "bytes" not in by["micro"]
    if compiler_path() is None:
        assert "no edgetpu_compiler here" in by["edgetpu"]["status"] and "9/9 ops" in by["edgetpu"]["status"]
    with open(tmp_path / "benchmark.csv") as f:
        saved = list(csv.DictReader(f))
    assert [r["target"] for r in saved] == ["tflite", "edgetpu", "micro"]
    assert float(saved[0]["accuracy"]) == by["tflite"]["accuracy"]
    md = (tmp_path / "benchmark.md").read_text()
    assert "| micro | export failed" in md and "| tflite | ok |" in md


def test_benchmark_cli(trained_cnn, tmp_path):
    r = CliRunner().invoke(cli, ["benchmark", str(trained_cnn[1]), "--target", "onnx", "--out", str(tmp_path / "b"),
                                 "--runs", "5", "-q"])
    assert r.exit_code == 0, r.output
    assert "onnx" in r.output and "100.00%" in r.output and (tmp_path / "b/benchmark.md").is_file()
    again = CliRunner().invoke(cli, ["benchmark", str(trained_cnn[1]), "--out", str(tmp_path / "b"), "-q"])
    assert again.exit_code == 2 and "--force" in again.output
