"""edgekit benchmark: one table; a target that cannot be built shows why instead of failing it."""
from __future__ import annotations

import csv

from click.testing import CliRunner

from edgekit.cli.main import cli
from edgekit.export import ExportConfig
from edgekit.validate.bench import benchmark
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
    from edgekit.devices.isa import host_cpu

    cpu = host_cpu()
    assert saved[0]["cpu_class"] == cpu["class"] and saved[0]["cpu_model"] == cpu["model"]
    assert f"Latency measured on {cpu['model']} ({cpu['class']}" in md and "Fastest here: " in md


def test_cpu_notes_say_when_int8_is_not_expected_to_be_faster():
    from edgekit.devices.isa import cpu_class
    from edgekit.validate.bench import cpu_notes

    rows = [{"target": "tflite", "p50_ms": 0.093, "threads": 1}, {"target": "tflite-int8", "p50_ms": 0.143, "threads": 1},
            {"target": "micro", "status": "export failed"}]
    avx2 = cpu_class("model name\t: Intel(R) Core(TM) i7-6700\nflags\t: sse2 avx avx2 fma\n", "x86_64")
    notes = cpu_notes(rows, avx2)
    assert notes[0].startswith("Latency measured on Intel(R) Core(TM) i7-6700 (x86-avx2: AVX2, FMA), batch 1, 1 thread")
    assert notes[1] == "Fastest here: tflite (p50 93.0 us on x86-avx2)."
    assert notes[2].startswith("int8 is not expected to be faster than float on x86-avx2: AVX2 without VNNI")
    assert "(measured: tflite-int8 143.0 us, tflite 93.0 us)" in notes[2]
    vnni = cpu_class("model name\t: AMD EPYC 9454\nflags\t: sse2 avx2 avx512f avx512_vnni\n", "x86_64")
    assert cpu_notes(rows[1:], vnni)[2].startswith("int8 is expected to be faster than float on x86-avx512-vnni")


def test_benchmark_cli(trained_cnn, tmp_path):
    r = CliRunner().invoke(cli, ["benchmark", str(trained_cnn[1]), "--target", "onnx", "--out", str(tmp_path / "b"),
                                 "--runs", "5", "-q"])
    assert r.exit_code == 0, r.output
    assert "onnx" in r.output and "100.00%" in r.output and (tmp_path / "b/benchmark.md").is_file()
    again = CliRunner().invoke(cli, ["benchmark", str(trained_cnn[1]), "--out", str(tmp_path / "b"), "-q"])
    assert again.exit_code == 2 and "--force" in again.output
