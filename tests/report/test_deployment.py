"""The report as a deployment sheet: one table of what each target needs and gets, one unit
convention (µs, bytes), readable plots and a readable compression section."""
from __future__ import annotations

import re

import pytest

from edgekit.gate import GateConfig, run_gates
from edgekit.manifest import update_manifest
from edgekit.report import build_report, to_html, to_markdown, write_report
from edgekit.report import charts
from tests.report.deploy_run import ARENA, make_deploy_run


def section(md: str, title: str) -> str:
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def row(md: str, target: str) -> list[str]:
    line = next(l for l in section(md, "Deployment").splitlines() if l.startswith(f"| {target} |"))
    return [c.strip() for c in line.strip("|").split(" | ")]


@pytest.fixture()
def md(tmp_path) -> str:
    return write_report(make_deploy_run(tmp_path / "run").parent)[0].read_text()


def test_deployment_table_leads_with_edgetpu_mapping_and_micro_arena(md):
    assert md.index("## Deployment") < md.index("## Run")
    tpu = row(md, "edgetpu")
    assert "9/9 ops on chip, 0 on CPU" in tpu[8] and "of the 8 MiB cache, fits" in tpu[8]
    assert tpu[1].startswith("n/a: not compiled (edgetpu_compiler was not on PATH)")
    assert "not the Edge TPU" in tpu[5]
    micro = row(md, "micro")
    assert micro[3] == f"{ARENA:,} B (18.5 KiB) TFLM arena"
    assert micro[1] == "36,200 B (35.4 KiB); model array"
    assert micro[4] == "1,266 µs / 2,698 µs" and "host-emulated" in micro[5]
    int8 = row(md, "tflite-int8")
    assert int8[1:3] == ["36,200 B (35.4 KiB)", "21,857 B (21.3 KiB), ÷1.7"]
    assert int8[4:8] == ["41.0 µs / 49.0 µs", "LiteRT on x86-avx2, 1 thread", "97.22 % (0.28 pt)", "99.44 %"]
    assert "–" not in section(md, "Deployment")  # missing values say n/a and why


def test_export_table_has_sizes_and_tensors_of_every_target(md):
    rows = {l.split(" | ")[0].strip("| "): l for l in section(md, "Export").splitlines() if l.startswith("| ")}
    assert "| 121,300 B |" in rows["onnx"] and "float32[Nx28x28x1]" in rows["onnx"]
    assert "| 36,200 B |" in rows["micro"] and "int8[1x28x28x1]" in rows["micro"]
    assert "(same file as tflite-int8)" in rows["edgetpu"] and "int8[-1x28x28x1]" in rows["edgetpu"]
    for name in ("onnx", "micro", "edgetpu"):
        assert " – " not in rows[name]


def test_smallest_card_counts_only_deployable_artifacts(tmp_path):
    run = make_deploy_run(tmp_path / "a", edgetpu_bytes=20_480)  # an uncompiled Edge TPU input, smaller than all
    cards = {label: value for label, value, _ in build_report(run.parent).cards}
    assert cards["smallest deployable artifact (tflite-int8, micro)"] == "36,200 B (35.4 KiB)"
    assert cards["fastest p50 on this CPU (tflite-int8)"] == "41.0 µs"  # not micro on the host, not edgetpu on CPU
    run = make_deploy_run(tmp_path / "b", compiled=True)
    md = to_markdown(build_report(run.parent))
    assert row(md, "edgetpu")[1] == "40,960 B (40.0 KiB); compiled"
    assert "compiler: 9 on chip, 0 on CPU" in row(md, "edgetpu")[8]


def test_latency_is_in_microseconds_everywhere(tmp_path):
    run = make_deploy_run(tmp_path / "run")
    gates = run_gates(run, GateConfig(targets=("tflite-int8",), max_latency_ms=0.03))
    update_manifest(run.parent, "gates", config=gates.config, metrics=gates.to_dict())
    report = build_report(run.parent)
    md, html = to_markdown(report), to_html(report)
    assert "| latency_p50 | tflite-int8 | 41.0 µs | <= 30.0 µs | FAIL |" in md.replace("**", "").replace("❌ ", "")
    for text in (md, html):
        assert not re.search(r"\d ms\b", text)
    assert "| 41.0 µs | 49.0 µs |" in section(md, "Validation")


def test_compression_section_lists_only_what_is_set(md):
    comp = section(md, "Compression")
    assert "- **prune**: 0.75" in comp and "- **cluster layers**: dense1=8" in comp
    for word in ("null", "None", "channels", "..."):
        assert word not in comp.split("<details>")[0]
    header = next(l for l in comp.splitlines() if l.startswith("| stage |"))
    assert header.count("|") - 1 <= 13
    assert "| measurement | baseline | prune | cluster | qat |" in comp  # every other measurement, narrow


# -- plots ---------------------------------------------------------------------------------------
def _texts(fig):
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    ticks = [t.get_window_extent(r) for ax in fig.axes for t in ax.get_xticklabels() + ax.get_yticklabels()
             if t.get_text() and t.get_visible()]
    notes = [t.get_window_extent(r) for ax in fig.axes for t in ax.texts if t.get_text()]
    return ticks, notes


def _overlaps(boxes):
    return [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]


POINTS = [  # p50 in µs: the close, sub-decade spread that gave "0.020.030.05" tick labels
    {"label": "tflite", "drop": 0.0, "latency": 18.59, "x_err": (18.59, 21.0), "bytes": 120_400},
    {"label": "tflite-int8", "drop": 0.28, "latency": 30.5, "x_err": (30.5, 33.0), "bytes": 36_200},
    {"label": "edgetpu (on CPU)", "drop": 0.28, "latency": 30.6, "x_err": (30.6, 33.1), "bytes": 36_200},
    {"label": "onnx", "drop": 0.0, "latency": 22.0, "x_err": (22.0, 25.0), "bytes": 121_300},
]


@pytest.mark.parametrize("key", ["latency", "bytes"])
def test_drop_plot_labels_and_ticks_do_not_overlap(key):
    fig = charts.drop_figure(POINTS, key, key, "t", extra=[{"label": "prune", "drop": 0.3, "bytes": 101_900},
                                                            {"label": "qat", "drop": 0.28, "bytes": 36_200}])
    ticks, notes = _texts(fig)
    assert 2 <= len([b for b in ticks if b.y1 < fig.axes[0].get_window_extent().y0]) <= 5  # x ticks
    assert _overlaps(ticks) == [] and _overlaps(notes) == []
    assert [t.get_text() for t in fig.axes[0].texts if "=" in t.get_text()] == ["tflite-int8 = edgetpu (on CPU)"] \
        if key == "latency" else True
    lo, hi = fig.axes[0].get_ylim()
    assert lo < 0 < hi and hi - lo >= charts.MIN_DROP_SPAN_PT  # a 0.28 pt drop looks small


def test_host_micro_latency_has_its_own_axis():
    fig = charts.latency_figure(POINTS[:2], [{"label": "micro", "drop": 0.56, "latency": 1266.0,
                                              "x_err": (1266.0, 2698.0)}])
    main, host = fig.axes
    assert "host-emulated" in host.get_title()
    assert max(main.get_xlim()) < 1000 < min(host.get_xlim()) * 10
    ticks, notes = _texts(fig)
    assert _overlaps(ticks) == [] and _overlaps(notes) == []


def test_size_plot_has_raw_and_gzip_bars():
    fig = charts.size_figure([{"label": "tflite-int8", "raw": 36_200, "gzip": 4_000},
                              {"label": "tflite", "raw": 120_400, "gzip": 72_505}])
    ax = fig.axes[0]
    assert sorted(round(p.get_width()) for p in ax.patches) == [4_000, 36_200, 72_505, 120_400]
    assert any("(÷9.1)" in t.get_text() for t in ax.texts)  # the gzip gain is shown


def test_log_ticks_are_few_and_round():
    assert charts.log_ticks(10.3, 73.0) == [20.0, 30.0, 50.0]
    assert charts.log_ticks(900, 2_000_000) == [1_000.0, 10_000.0, 100_000.0, 1_000_000.0]
    assert len(charts.log_ticks(1e-3, 1e9)) <= 5


def test_user_facing_text_has_no_process_words(md):
    for word in ("issue", "stop ", "the seed"):
        assert word not in md.lower()
