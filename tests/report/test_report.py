"""write_report: content of report.md / report.html from hand-made runs, partial runs, bad input."""
from __future__ import annotations

import base64
import re
import struct
import subprocess
import sys

import pytest
from click.testing import CliRunner

from edgekit.cli.main import cli
from edgekit.errors import InputError, OutputExistsError
from edgekit.gate import GateConfig, run_gates
from edgekit.manifest import update_manifest
from edgekit.report import build_report, write_report
from tests.gate.fabricate import COMPRESS_STAGES, TARGETS, edit_manifest, make_run

PNG = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG)
    return struct.unpack(">II", data[16:24])


def inline_pngs(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


@pytest.fixture()
def run(tmp_path):
    return make_run(tmp_path / "run")


def test_full_report(run):
    md_path, html_path = write_report(run.parent)
    assert (md_path, html_path) == (run.parent / "report.md", run.parent / "report.html")
    md, html = md_path.read_text(), html_path.read_text()
    for title in ("## Run", "## Training", "## Compression", "## Export", "## Validation", "## Artifacts",
                  "## Environment"):
        assert title in md
        assert f"<h2>{title[3:]}</h2>" in html
    # per-target validation rows with the manifest's numbers
    assert "| tflite-int8 | litert | 36,200 B | 21,857 B | 97.22 % | 0.28 pt | 99.44 % | 0.0117 |" in md
    assert md.index("## Compression") < md.index("## Export") < md.index("## Validation")
    assert "| onnx | onnxruntime | 121,300 B |" in md
    # one compression row per stage, the best (smallest int8 gzip within 1 pt) starred
    for s in COMPRESS_STAGES:
        assert f"| {s['stage']} | " in md or f"| ⭐ {s['stage']} | " in md
    assert "| ⭐ qat | 97.22 % | 0.28 pt | 74.00 % | 24,015 | 16 | 36,200 B | 21,900 B |" in md
    assert "| 5 | 0.13 | 96.00 % | 0.12 | 97.00 % | 0.001 |" in md  # last epoch of history.json
    assert "All 7 artifacts match the sha256" in md
    # export details: dtypes, parameter bytes and op counts
    assert "| tflite-int8 | model_int8.tflite | litert | 36,200 B | 93,322 B | int8[-1x28x28x1] | int8[-1x10] |" in md
    assert "CONV_2D×3, MAX_POOL_2D×2, RESHAPE, FULLY_CONNECTED×2, SOFTMAX" in md
    assert "| ok |" in md and "All validation measurements" in md
    # the same numbers in the HTML
    for needle in ("36,200 B", "99.44 %", "24,015", "onnxruntime", "model_int8.tflite"):
        assert needle in html
    # self-contained: four inline PNG plots, no scripts, no external resources
    pngs = inline_pngs(html)
    assert len(pngs) == 4
    assert png_size(pngs[0]) == (1100, 320)  # training curves: loss, accuracy, lr
    assert png_size(pngs[1])[0] == 560  # raw and gzip size bars
    assert all(png_size(p) == (560, 400) for p in pngs[2:])  # drop vs size, drop vs latency (no micro here)
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert not re.search(r'(src|href)="(?!data:|#)', html)


def test_report_cards_and_gates_section(run):
    report = run_gates(run, GateConfig(targets=("tflite-int8",), max_size=30_000, min_agreement=99))
    update_manifest(run.parent, "gates", config=report.config, metrics=report.to_dict())
    rep = build_report(run.parent)
    cards = {label: (value, kind) for label, value, kind in rep.cards}
    assert cards["gates"] == ("1/2 passed", "fail")
    assert cards["smallest deployable artifact (tflite-int8)"] == ("36,200 B (35.4 KiB)", "")
    assert cards["fastest p50 on this CPU (tflite-int8)"] == ("41.0 µs", "")
    assert cards["reference accuracy"] == ("97.50 %", "")
    md, html = (p.read_text() for p in write_report(run.parent))
    assert "1 of 2 gates failed." in md
    assert "| ❌ **size** | **tflite-int8** | **36,200 B** | **<= 30,000 B** | **FAIL** |" in md
    assert '<tr class="fail">' in html and 'class="l result-FAIL">FAIL</td>' in html


def test_partial_runs(tmp_path):
    train_only = make_run(tmp_path / "train_only", stages=("train",))
    md = write_report(train_only.parent)[0].read_text()
    assert "## Training" in md and "## Validation" not in md and "## Compression" not in md
    html = (train_only.parent / "report.html").read_text()
    assert len(inline_pngs(html)) == 1
    val_only = make_run(tmp_path / "val_only", stages=("export", "validate"))
    md = write_report(val_only.parent)[0].read_text()
    assert "## Validation" in md and "## Training" not in md
    assert len(inline_pngs((val_only.parent / "report.html").read_text())) == 3


def test_missing_history_and_tampered_files_are_reported(run):
    (run.parent / "history.json").unlink()
    data = bytearray((run.parent / "model.onnx").read_bytes())
    data[0] ^= 1
    (run.parent / "model.onnx").write_bytes(bytes(data))
    md = write_report(run.parent)[0].read_text()
    assert "No training curves: history.json is missing." in md
    assert "2 file(s) listed in the manifest are missing or changed" in md
    assert "history.json, model.onnx" in md
    assert "| ❌ **model.onnx** |" in md


def test_generic_compression_rows(tmp_path):
    run = make_run(tmp_path / "run", stages=("train", "compress"))
    edit_manifest(run, lambda m: m["stages"]["compress"]["metrics"].update(
        stages=[{"stage": "prune", "accuracy": 0.95, "new_metric_bytes": 2048, "note": "custom"}], final={},
        per_layer=[]))
    md = write_report(run.parent)[0].read_text()
    assert "| stage | accuracy | new metric bytes | note |" in md
    assert "| prune | 95.00 % | 2,048 B | custom |" in md


def test_refuses_to_overwrite_without_force(run, tmp_path):
    md, html = write_report(run.parent)
    md.write_text("edited")
    with pytest.raises(OutputExistsError, match="--force"):
        write_report(run.parent)
    assert md.read_text() == "edited"
    write_report(run.parent, force=True)
    assert md.read_text().startswith("# edgekit run report")
    other = tmp_path / "elsewhere"
    md2, html2 = write_report(run, out=other)  # the manifest path works too
    assert md2 == other / "report.md" and html2.is_file()


@pytest.mark.parametrize("content", ['{"format": "nope"}', "{broken"])
def test_foreign_manifest_writes_nothing(tmp_path, content):
    (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(InputError):
        write_report(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


def test_report_cli(run, tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, ["report", str(run.parent)])
    assert r.exit_code == 0, r.output
    assert "report.md" in r.output and "self-contained" in r.output
    r = runner.invoke(cli, ["report", str(run.parent)])
    assert r.exit_code == 2 and "--force" in r.output and "Traceback" not in r.output
    assert runner.invoke(cli, ["report", str(run.parent), "--force", "-q"]).exit_code == 0
    r = runner.invoke(cli, ["report", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_report_does_not_import_tensorflow(run):
    code = ("import sys\nfrom edgekit.report import write_report\n"
            f"write_report({str(run.parent)!r})\n"
            "print('HEAVY', [m for m in ('tensorflow', 'tf_keras', 'onnxruntime') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout


def test_targets_fixture_matches_report_rows(run):
    md = write_report(run.parent)[0].read_text()
    for name in TARGETS:
        assert f"| {name} | " in md


# -- found by the CLI fuzzer (tests/fuzz): damaged fields are left out, never a traceback ------------
def _set(path: list, value):
    def edit(m):
        node = m
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return edit


@pytest.mark.parametrize("edit", [
    _set(["stages"], 12),
    _set(["stages", "validate", "metrics"], "oops"),
    _set(["stages", "validate", "metrics", "targets"], 0.5),
    _set(["stages", "validate", "metrics", "targets", "tflite", "bytes"], float("inf")),
    _set(["stages", "validate", "metrics", "targets", "tflite", "accuracy"], float("nan")),
    _set(["stages", "validate", "metrics", "targets", "onnx", "latency_p50_ms"], 10**400),
    _set(["stages", "train", "config"], [1, 2]),
    _set(["stages", "train", "metrics"], "x"),
    _set(["stages", "compress", "metrics", "stages"], {"a": 1}),
    _set(["stages", "export", "metrics", "onnx", "input"], [{"dtype": "float32", "shape": 7}]),
    _set(["stages", "gates"], {"metrics": {"checks": [{"name": "size", "measured": "big", "limit": None}]}}),
    _set(["dataset", "input_shape"], 28),
    _set(["dataset", "sizes"], [1, 2]),
    _set(["artifacts"], 5),
    _set(["stages", "validate", "metrics", "reference", "path"], "a\x00b"),
])
def test_damaged_manifest_fields_still_give_a_report(run, edit):
    edit_manifest(run, edit)
    md, html = write_report(run.parent, force=True)
    assert md.read_text().startswith("# edgekit run report") and html.stat().st_size > 1000


@pytest.mark.parametrize("history", [
    [{"epoch": 2**40, "loss": {"a": 1}}, {"epoch": "x", "loss": 0.5, "lr": float("inf")}],
    [{"epoch": [1], "accuracy": "high", "val_accuracy": 10**400}],
    [{"loss": float("nan"), "lr": True}],
])
def test_damaged_history_still_gives_curves(run, history):
    import json

    (run.parent / "history.json").write_text(json.dumps(history))
    md = write_report(run.parent)[0].read_text()
    assert "Training curves" in md or "No training curves" in md
    assert "history.json" in md  # named as changed since the manifest was written


def test_deeply_nested_history_is_named(run):
    (run.parent / "history.json").write_text("[" * 100_000 + "]" * 100_000)
    md = write_report(run.parent)[0].read_text()
    assert "No training curves: history.json is nested too deeply to be a history." in md


def test_latency_carries_the_cpu_and_device_rows(tmp_path):
    """Every latency figure says which CPU (model, class, features) and threads it was measured on."""
    from edgekit.report import build_report, to_html, to_markdown
    from tests.gate.fabricate import make_run

    cpu = {"model": "Intel(R) Core(TM) i7-6700", "class": "x86-avx2", "features": ["AVX2", "FMA"],
           "int8_expected_faster": False}
    dev = {"ssh://pi@rpi": {"accuracy": 0.9722, "agreement_pct": 100.0, "max_abs_diff": 0.0, "latency_p50_ms": 0.61,
                            "latency_p90_ms": 0.7, "threads": 1, "status": "ok",
                            "facts": {"cpu": {"model": "Cortex-A72 / Raspberry Pi 4", "class": "arm-neon"}}}}
    make_run(tmp_path, targets={"tflite": {"cpu": cpu}, "tflite-int8": {"cpu": cpu, "devices": dev},
                                "onnx": {"cpu": cpu}})
    report = build_report(tmp_path)
    md = to_markdown(report)
    assert "Latency measured on Intel(R) Core(TM) i7-6700 (x86-avx2: AVX2, FMA), 1 thread." in md
    assert "ssh://pi@rpi" in md and "Cortex-A72 / Raspberry Pi 4" in md and "arm-neon" in md
    assert "Cortex-A72 / Raspberry Pi 4" in to_html(report)
