"""``benchmark``: export to every target, validate each on its runtime, one comparison table.

A target that cannot be built or run here shows why in its status instead of failing the
table (e.g. the Edge TPU compiler is absent: the full-int8 model still runs on LiteRT's
CPU kernels and the analysis says how it would map).
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from edgekit.artifacts import prepare_out_dir, write_text
from edgekit.data import Dataset
from edgekit.errors import EdgekitError, ValidationError
from edgekit.export.api import load_checked
from edgekit.export.base import ExportConfig
from edgekit.export.targets import load_targets
from edgekit.validate.config import ValidateConfig
from edgekit.validate.step import STEP_VALIDATE, export_and_validate
from edgekit.vocab import EDGETPU

COLUMNS = ["target", "status", "runtime", "bytes", "gzip_bytes", "accuracy", "drop_pt", "agreement_pct",
           "p50_ms", "p90_ms", "threads", "cpu_model", "cpu_class", "cpu_features"]


def benchmark(
    model_or_path: Any,
    dataset: Dataset,
    out: str | os.PathLike,
    targets: Sequence[str] | None = None,
    force: bool = False,
    config: ExportConfig = ExportConfig(),
    progress: Callable[[str], None] | None = None,
    validate_config: ValidateConfig = STEP_VALIDATE,
) -> list[dict[str, Any]]:
    """Rows of the benchmark table (also saved as ``benchmark.csv`` and ``benchmark.md`` in ``out``).

    Each target goes through :func:`edgekit.export_and_validate` on its own, so a failing
    converter or runtime cannot sink the others."""
    from edgekit.devices.isa import host_cpu

    say = progress or (lambda _m: None)
    cpu = host_cpu()
    registry = load_targets()
    names = list(targets) if targets else registry.names()
    for n in names:
        registry.get(n)
    out_dir = Path(out)
    if out_dir.exists():
        prepare_out_dir(out_dir, force, expect=("benchmark.csv", "benchmark.md"))
    handle = load_checked(model_or_path, dataset)
    ref_path = handle.path
    out_dir = prepare_out_dir(out_dir, force, expect=("benchmark.csv", "benchmark.md"))
    status: dict[str, str] = {}
    results: dict[str, dict[str, Any]] = {}
    for i, n in enumerate(names, 1):
        say(f"{n}: export and validate (target {i}/{len(names)})")
        try:
            res = export_and_validate(handle, dataset, [n], out_dir, force=True, export_config=config,
                                      validate_config=validate_config, progress=say)
        except ValidationError as e:  # a tolerance miss (raised after writing): the row shows what was measured
            results[n] = e.result.validation.targets[n]
            status[n] = f"FAIL {e.metric} {e.value:.3g} (limit {e.limit:.3g})"
            continue
        except EdgekitError as e:
            written = getattr(e, "result", None) is not None  # set once the artifacts were written
            status[n] = f"{'validation' if written else 'export'} failed: {e}"
            continue
        results[n] = res.validation.targets[n]
        note = _note(n, res.outputs[n].info)
        status[n] = "ok" + (f" ({note})" if note else "")
    rows = []
    for n in names:
        m = results.get(n)
        row: dict[str, Any] = {"target": n, "status": status.get(n, "not run")}
        if m:
            row.update({"runtime": m["runtime"], "bytes": m["bytes"], "gzip_bytes": m["gzip_bytes"],
                        "accuracy": round(m["accuracy"], 4), "drop_pt": round(m["accuracy_drop_pt"], 2),
                        "agreement_pct": round(m["agreement_pct"], 2), "p50_ms": round(m["latency_p50_ms"], 4),
                        "p90_ms": round(m["latency_p90_ms"], 4), "threads": m["threads"],
                        "cpu_model": cpu["model"], "cpu_class": cpu["class"], "cpu_features": "+".join(cpu["features"])})
        rows.append(row)
    write_text(out_dir / "benchmark.csv", to_csv(rows))
    write_text(out_dir / "benchmark.md", to_markdown(rows, dataset, ref_path, cpu))
    return rows


def cpu_notes(rows: list[dict[str, Any]], cpu: dict[str, Any]) -> list[str]:
    """What the latencies of ``rows`` depend on: the CPU (model, class, features, threads), the
    fastest artifact on it, and whether int8 is expected to beat float on this CPU class."""
    from edgekit.devices.isa import describe_cpu

    timed = [r for r in rows if "p50_ms" in r]
    threads = sorted({int(r["threads"]) for r in timed}) or [1]
    notes = [f"Latency measured on {describe_cpu(cpu)}, batch 1, {'/'.join(map(str, threads))} thread"
             f"{'s' if threads != [1] else ''}: it holds for this CPU class only."]
    if timed:
        best = min(timed, key=lambda r: r["p50_ms"])
        notes.append(f"Fastest here: {best['target']} (p50 {best['p50_ms'] * 1e3:.1f} us on {cpu['class']}).")
    p50 = {r["target"]: r["p50_ms"] for r in timed}
    measured = (f" (measured: tflite-int8 {p50['tflite-int8'] * 1e3:.1f} us, tflite {p50['tflite'] * 1e3:.1f} us)"
                if {"tflite", "tflite-int8"} <= set(p50) else "")
    if not cpu.get("int8_expected_faster"):
        notes.append(f"int8 is not expected to be faster than float on {cpu['class']}: {cpu['reason']}{measured}. "
                     "Measure on the deployment CPU (edgekit validate --device).")
    else:
        notes.append(f"int8 is expected to be faster than float on {cpu['class']}: {cpu['reason']}{measured}.")
    return notes


def _note(target: str, info: dict[str, Any]) -> str | None:
    """What the status of a built target adds (the Edge TPU compiler's presence)."""
    if target != EDGETPU:
        return None
    comp = info.get("compiler", {})
    a = info["analysis"]
    mapped = f"{a['ops_mapped']}/{a['ops_total']} ops map to the TPU"
    if comp.get("status") == "ok":
        return f"compiled ({comp.get('ops_on_edgetpu')} ops on TPU); CPU numbers via LiteRT"
    return f"no edgetpu_compiler here: analysis only ({mapped}); runs on LiteRT CPU"


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def to_markdown(rows: list[dict[str, Any]], dataset: Dataset, ref_path: str | None,
                cpu: dict[str, Any] | None = None) -> str:
    from edgekit.devices.isa import host_cpu

    cpu = cpu or host_cpu()
    lines = ["# edgekit benchmark", "",
             f"Model `{ref_path or '(in memory)'}` on {dataset.info.spec} holdout ({dataset.info.sizes['test']} images); "
             f"batch-1 latency, {os.cpu_count()} CPU cores.", "", *cpu_notes(rows, cpu), "",
             "| target | status | size | gzip | accuracy | drop (pt) | agreement | p50 (us) | p90 (us) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "bytes" in r:
            lines.append(f"| {r['target']} | {r['status']} | {r['bytes']:,} | {r['gzip_bytes']:,} | {r['accuracy']:.4f} | "
                         f"{r['drop_pt']:+.2f} | {r['agreement_pct']:.2f}% | {r['p50_ms'] * 1e3:.1f} | {r['p90_ms'] * 1e3:.1f} |")
        else:
            lines.append(f"| {r['target']} | {r['status']} | | | | | | | |")
    return "\n".join(lines) + "\n"


__all__ = ["benchmark", "cpu_notes", "to_csv", "to_markdown", "COLUMNS"]
