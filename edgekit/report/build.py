"""Turn a run's manifest (and the files it lists) into report blocks.

Every stage is optional: a section is left out, or says what is missing, when the manifest
lacks it. Only JSON and PNGs are read; TensorFlow is never imported.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

from edgekit.errors import InputError
from edgekit.manifest import MANIFEST, load_manifest, verify_manifest
from edgekit.report import charts, plots
from edgekit.report.blocks import (
    Details, Figure, Figures, KeyValues, Paragraph, Report, Section, Table, fmt_value,
)
from edgekit.report.compression import compression_section, transposed
from edgekit.report.deployment import DeployRow, deployment_rows, deployment_section, fastest, smallest
from edgekit.report.tables import LABELS, generic_table as _generic_table, scalar as _scalar
from edgekit.report.units import fmt_bytes, fmt_bytes_kib, us_text

Progress = Callable[[str], None]

TRAIN_KEYS = ("test_accuracy", "test_loss", "final_val_accuracy", "epochs_run", "train_seconds", "images_per_second",
              "params", "macs")
HISTORY_KEYS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds", "images_per_second")
VALIDATE_KEYS = ("target", "runtime", "bytes", "gzip_bytes", "accuracy", "accuracy_drop_pt", "agreement_pct",
                 "max_abs_diff", "mean_abs_diff", "latency_p50_ms", "latency_p90_ms", "threads", "runs")
def build_report(run_dir: str | Path, progress: Progress | None = None) -> Report:
    """Read ``run_dir/manifest.json`` and the files it lists; return the report's blocks."""
    root = Path(run_dir)
    path = root / MANIFEST if root.is_dir() or not root.suffix else root
    root = path.parent
    man = load_manifest(path)
    stages = _map(man.get("stages"))
    arts = [a for a in _list(man.get("artifacts")) if isinstance(a, Mapping) and isinstance(a.get("path"), str)]
    say = progress or (lambda _m: None)

    try:
        changed = verify_manifest(path)
    except (KeyError, TypeError, AttributeError, InputError):
        changed = ["(malformed artifacts list)"]

    train = _stage(stages, "train")
    model = _map(train.get("config")).get("model") if train else None
    ds = _map(man.get("dataset"))
    title = "edgekit run report"
    subtitle = " · ".join(filter(None, [
        root.resolve().name, f"model {model}" if model else "", f"data {ds.get('spec')}" if ds.get("spec") else "",
        f"updated {man.get('updated')}" if man.get("updated") else "",
    ]))
    sections = []
    deploy = deployment_rows(stages, arts, root)
    if deploy:
        sections.append(deployment_section(deploy))
    say("report: run overview")
    sections.append(_overview(man, stages, arts, changed, ds))
    gates = _stage(stages, "gates")
    if gates:
        sections.append(_gates(gates))
    if train:
        say("report: training curves")
        sections.append(_training(train, arts, root))
    optimize = _stage(stages, "optimize")
    if optimize:
        sections.append(_optimize(optimize, arts, root))
    compress = _stage(stages, "compress")
    if compress:
        sections.append(compression_section(compress))
    export = _stage(stages, "export")
    if export:
        sections.append(_export(export, arts))
    validate = _stage(stages, "validate")
    if validate:
        say("report: validation plots")
        sections.append(_validation(validate, compress, arts, root, deploy))
    diagnose = _stage(stages, "diagnose")
    if diagnose:
        sections.append(_diagnose(diagnose))
    sections.append(_artifacts(arts, changed, root))
    sections.append(_environment(man, stages))
    return Report(title, subtitle, _cards(train, deploy, gates, changed), sections,
                  meta={"manifest": str(path), "edgekit_version": man.get("edgekit_version")})


# -- sections ------------------------------------------------------------------------------
def _overview(man: Mapping, stages: Mapping, arts: list, changed: list[str], ds: Mapping) -> Section:
    blocks: list = []
    if changed:
        blocks.append(Paragraph(
            f"{len(changed)} file(s) listed in the manifest are missing or changed since it was written "
            f"(sha256 mismatch): {', '.join(changed)}. The numbers below describe the original files.", "warn"))
    else:
        blocks.append(Paragraph(f"All {len(arts)} artifacts match the sha256 recorded in the manifest.", "ok"))
    items = [("stages", ", ".join(str(s) for s in stages)), ("created", str(man.get("created", "–"))),
             ("updated", str(man.get("updated", "–")))]
    if ds:
        sizes = _map(ds.get("sizes"))
        size_txt = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in sizes.items())
        items += [("dataset", str(ds.get("spec", "–"))),
                  ("input shape", "×".join(str(d) for d in _list(ds.get("input_shape"))) or "–"),
                  ("classes", str(ds.get("num_classes", "–"))), ("split sizes", size_txt or "–")]
    blocks.append(KeyValues(items))
    return Section("Run", "run", blocks)


def _gates(stage: Mapping) -> Section:
    m = _map(stage.get("metrics"))
    checks = [c for c in _list(m.get("checks")) if isinstance(c, Mapping)]
    if not checks:
        return Section("Gates", "gates", [Paragraph("The gates stage recorded no checks.", "note")])
    from edgekit.gate.checks import Check

    rows, marks = [], []
    for d in checks:
        passed = d.get("passed") is True
        try:
            c = Check.from_dict(dict(d))
            row = [str(c.name), str(c.target), *_check_values(c), c.result, str(c.detail)]
        except (TypeError, ValueError, KeyError, OverflowError):  # a check written by hand or damaged
            row = [str(d.get(k, "–")) for k in ("name", "target", "measured", "limit")]
            row += ["PASS" if passed else "FAIL", str(d.get("detail", ""))]
        rows.append(row)
        marks.append("pass" if passed else "fail")
    failed = marks.count("fail")
    head = Paragraph(f"All {len(rows)} gates passed." if not failed else f"{failed} of {len(rows)} gates failed.",
                     "ok" if not failed else "warn")
    table = Table(["check", "target", "measured", "limit", "result", "detail"], rows,
                  ["l", "l", "r", "r", "l", "l"], marks)
    return Section("Gates", "gates", [head, table])


def _check_values(c: Any) -> list[str]:
    """A check's measured value and limit as text; latency (recorded in ms) in µs like the rest of the report."""
    if c.unit != "ms":
        return [c.measured_text, c.limit_text]
    measured = "missing" if c.measured is None else us_text(1000 * c.measured)
    return [measured, f"{c.op} {us_text(1000 * c.limit)}"]


def _training(stage: Mapping, arts: list, root: Path) -> Section:
    cfg, m = _map(stage.get("config")), _map(stage.get("metrics"))
    blocks: list = []
    if cfg:
        keys = [k for k in ("model", "optimizer", "schedule", "lr", "epochs", "batch_size", "l2", "seed")
                if cfg.get(k) is not None]
        blocks.append(Paragraph("Configuration: " + ", ".join(f"{k} {cfg[k]}" for k in keys) + "."))
    keys = [k for k in TRAIN_KEYS if k in m] + [k for k in m if k not in TRAIN_KEYS and _scalar(m[k])]
    if keys:
        blocks.append(Table(["metric", "value"], [[LABELS.get(k, k.replace("_", " ")), fmt_value(k, m[k])]
                                                  for k in keys]))
    history, why = _history(arts, root)
    if history:
        blocks.append(Figure("Training curves", plots.training_curves(history, _train_title(cfg)),
                             "Loss, accuracy and learning rate per epoch, training and validation"))
        cols = [k for k in HISTORY_KEYS if any(k in r for r in history)]
        cols += [k for k in history[0] if k not in cols and _scalar(history[0][k])]
        rows = [[fmt_value(k, r.get(k)) for k in cols] for r in history]
        blocks.append(Details(f"Per-epoch history ({len(history)} epochs)",
                              Table([LABELS.get(k, k.replace("_", " ")) for k in cols], rows)))
    else:
        blocks.append(Paragraph(f"No training curves: {why}", "note"))
    return Section("Training", "training", blocks)


DIAGNOSE_KEYS = ("name", "dtype", "scale", "rmse", "snr_db", "cosine", "nsr_added", "recovered_pt")


def _diagnose(stage: Mapping) -> Section:
    """The per-layer error table of ``edgekit diagnose`` (worst layer first)."""
    m = _map(stage.get("metrics"))
    blocks: list = []
    if all(_num(m.get(k)) for k in ("float_accuracy", "artifact_accuracy", "drop_pt")):
        blocks.append(Paragraph(f"{m.get('artifact')}: float {100 * m['float_accuracy']:.2f}%, artifact "
                                f"{100 * m['artifact_accuracy']:.2f}% (drop {m['drop_pt']:.2f} pt); layers ranked by "
                                "the noise-to-signal ratio they add."))
    layers = [r for r in _list(m.get("layers")) if isinstance(r, Mapping)]
    blocks.append(_generic_table(layers, DIAGNOSE_KEYS, skip=("layers", "tensor", "loo_accuracy")) if layers
                  else Paragraph("diagnose recorded no layers.", "note"))
    fix = _map(m.get("fix"))
    if fix:
        repair = "int16" if fix.get("repair") == "int16" else "keep_float"
        how = "Keep in float" if repair == "keep_float" else "16-bit activations"
        blocks.append(Paragraph(f"{how}: {', '.join(map(str, _list(fix.get(repair)))) or 'nothing'} "
                                f"({fix.get('before_accuracy')} -> {fix.get('after_accuracy')})."))
    return Section("Diagnose", "diagnose", blocks)


OPTIMIZE_KEYS = ("index", "key", "val_accuracy", "val_drop_pt", "raw_bytes", "gzip_bytes", "latency_us", "front", "meets")


def _optimize(stage: Mapping, arts: list, root: Path) -> Section:
    """``edgekit optimize``: the winner and its holdout figure, every candidate (Pareto front marked), the plot."""
    m = _map(stage.get("metrics"))
    blocks: list = [Paragraph(str(m.get("summary") or "optimize recorded no summary."), "" if m.get("met") else "warn")]
    rows = [r for r in _list(m.get("table")) if isinstance(r, Mapping)]
    if rows:
        table = _generic_table(rows, OPTIMIZE_KEYS)
        table.highlight = ["best" if r.get("key") == m.get("key") else "" for r in rows]
        blocks.append(table)
    png = next((root / a["path"] for a in arts if a["path"].endswith("optimize.png")), None)
    if png is not None and png.is_file():
        blocks.append(Figure("Every candidate: drop vs size and latency", png.read_bytes(),
                             "Validation drop against raw bytes, gzip'd bytes and latency; Pareto front circled"))
    return Section("Optimize", "optimize", blocks)


def _export(stage: Mapping, arts: list) -> Section:
    m = _map(stage.get("metrics"))
    blocks: list = []
    if stage.get("source"):
        blocks.append(Paragraph(f"Exported from {stage['source']}."))
    rows, failed = [], []
    for name, t in m.items():
        if not isinstance(t, Mapping):
            continue
        if t.get("failed") and not t.get("path"):
            failed.append(f"{name}: {t['failed']}")
            continue
        row: dict[str, Any] = {"target": name}
        row.update({k: v for k, v in t.items() if _scalar(v)})
        art = next((a for a in arts if a.get("path") == t.get("path")), {})
        size = next((v for v in (t.get("bytes"), t.get("model_bytes"), art.get("bytes")) if _num(v)), None)
        if size is not None:
            row["bytes"] = size
        for side in ("input", "output"):
            text = _tensors(t.get(side) if t.get(side) is not None else t.get(side + "s"))
            if text:
                row[side] = text
        ops = t.get("ops")
        if isinstance(ops, Mapping) and ops:
            row["ops"] = ", ".join(f"{k}×{v}" if v != 1 else str(k) for k, v in ops.items())
        rows.append(row)
    _same_file_facts(rows, arts)
    if rows:
        main = ("target", "path", "runtime", "bytes", "parameter_bytes", "input", "output", "ops")
        blocks.append(_generic_table(rows, main, only=True))
        if any(k not in main for r in rows for k in r):
            blocks.append(Details("All export details (one column per target)", transposed(rows, "target")))
    else:
        blocks.append(Paragraph("The export stage recorded no per-target details.", "note"))
    blocks += [Paragraph(f"Not exported: {f}", "warn") for f in failed]
    return Section("Export", "export", blocks)


def _same_file_facts(rows: list[dict[str, Any]], arts: list) -> None:
    """Fill what a target's export did not record (edgetpu: tensors and ops) from another target that
    wrote the very same file (same sha256), and say so in its path cell."""
    sha = {a["path"]: a.get("sha256") for a in arts if a.get("sha256")}
    keys = ("parameter_bytes", "input", "output", "ops")
    for r in rows:
        same = [o for o in rows if o is not r and sha.get(r.get("path")) and sha.get(o.get("path")) == sha[r["path"]]]
        twin = next((o for o in same if sum(k in o for k in keys) > sum(k in r for k in keys)), None)
        if twin is not None:
            r.update({k: twin[k] for k in keys if k in twin and r.get(k) is None})
            r["path"] = f"{r['path']} (same file as {twin['target']})"


def _tensors(specs: Any) -> str:
    """``int8[1x28x28x1]`` for each tensor of an input/output spec (a list of specs or one spec)."""
    specs = [specs] if isinstance(specs, Mapping) else specs
    if not isinstance(specs, list) or not specs or not all(isinstance(x, Mapping) for x in specs):
        return ""
    return ", ".join(f"{x.get('dtype', '?')}[{'x'.join(str(d) for d in _list(x.get('shape')))}]" for x in specs)


def _validation(stage: Mapping, compress: Mapping | None, arts: list, root: Path,
                deploy: list[DeployRow]) -> Section:
    m = _map(stage.get("metrics"))
    blocks: list = []
    ref = _map(m.get("reference"))
    targets = {k: v for k, v in _map(m.get("targets")).items() if isinstance(v, Mapping)}
    ref_art = _find_artifact(arts, root, ref.get("path")) if ref else None
    if ref:
        size = f", {fmt_bytes_kib(ref_art['bytes'])}" if ref_art and _num(ref_art.get("bytes")) else ""
        blocks.append(Paragraph(f"Reference model {ref.get('path', '?')}: accuracy "
                                f"{fmt_value('accuracy', ref.get('accuracy'))}{size}. Drops are against it, "
                                "in percentage points; agreement is top-1 agreement with it."))
    if not targets:
        blocks.append(Paragraph("The validate stage measured no targets.", "note"))
        return Section("Validation", "validation", blocks)
    rows = [{"target": name, **t} for name, t in targets.items()]
    main_keys = VALIDATE_KEYS + ("status",)
    blocks.append(_generic_table(rows, main_keys, only=True))
    more = [k for r in rows for k in r if k not in main_keys and k != "sha256" and _scalar(r[k])]
    if more:
        blocks.append(Details("All validation measurements (one column per target)",
                              transposed([{k: v for k, v in r.items() if k != "sha256"} for r in rows], "target")))
    blocks += _latency_context(targets)
    say_figs = _validation_figures(targets, compress, deploy)
    blocks.append(Figures(say_figs[:2]))
    blocks.append(say_figs[2])
    return Section("Validation", "validation", blocks)


def _validation_figures(targets: Mapping[str, Mapping], compress: Mapping | None,
                        deploy: list[DeployRow]) -> list[Figure]:
    """Raw vs gzip size bars, drop vs flash size, drop vs latency (host TFLite Micro on its own axis)."""
    colors = {name: plots.PALETTE[i % len(plots.PALETTE)] for i, name in enumerate(targets)}
    by_name = {r.target: r for r in deploy}
    stages = [r for r in _list(_map(_map(compress).get("metrics")).get("stages")) if isinstance(r, Mapping)]
    bars = [{"label": r.target, "raw": r.flash, "gzip": r.gzip} for r in deploy if r.flash]
    bars += [{"label": f"compress: {r.get('stage', '?')}", "raw": r.get("tflite_int8_bytes"),
              "gzip": r.get("tflite_int8_gzip_bytes")} for r in stages]
    points, host = [], []
    for name, t in targets.items():
        row = by_name.get(name)
        p = {"label": name, "drop": t.get("accuracy_drop_pt"), "color": colors[name],
             "bytes": row.flash if row else t.get("bytes"),
             "latency": 1000 * t["latency_p50_ms"] if _num(t.get("latency_p50_ms")) else None,
             "x_err": tuple(1000 * t[k] if _num(t.get(k)) else None for k in ("latency_p50_ms", "latency_p90_ms"))}
        if row is not None and row.edgetpu and not row.host_emulated:
            p["label"] = f"{name} (on CPU)"
        (host if row is not None and row.host_emulated else points).append(p)
    extra = [{"label": str(r.get("stage", "?")), "drop": r.get("accuracy_drop_pt"), "bytes": r.get("tflite_int8_bytes")}
             for r in stages]
    sized = [{k: v for k, v in p.items() if k != "x_err"} for p in points + host if p["bytes"]]
    return [
        Figure("Flash and download size", charts.size_bars(bars),
               "Raw (flash) and gzip'd (download) bytes per deployable artifact and compression stage"),
        Figure("Drop vs size", charts.drop_scatter(sized, "bytes", "flash size (bytes, log scale)",
                                                   "Size vs accuracy drop", extra, "compression stage (int8 tflite)"),
               "Accuracy drop (pt) against the flashed file's size, per target"),
        Figure("Latency vs accuracy drop", charts.latency_chart(points, host),
               "Accuracy drop (pt) against batch-1 p50 latency in µs (bar to p90); TFLite Micro, run on the host "
               "with reference kernels, on its own axis"),
    ]


def _latency_context(targets: Mapping[str, Mapping]) -> list:
    """Which CPU (model, class, features) and how many threads the latencies were measured on,
    and the targets validated on devices (latency measured there)."""
    from edgekit.devices.isa import describe_cpu

    blocks: list = []
    cpus = list(dict.fromkeys(describe_cpu(t["cpu"], t.get("threads")) for t in targets.values()
                              if isinstance(t.get("cpu"), Mapping)))
    if cpus:
        blocks.append(Paragraph("Latency measured on " + "; ".join(cpus) + ". It holds for this CPU class only: "
                                "int8 vs float speed differs between classes.", "note"))
    rows = []
    for name, t in targets.items():
        for uri, d in _map(t.get("devices")).items():
            cpu = _map(_map(_map(d).get("facts")).get("cpu"))
            rows.append({"target": name, "device": uri, "cpu": cpu.get("model"), "cpu class": cpu.get("class"),
                         **{k: v for k, v in _map(d).items() if k != "facts"}})
    if rows:
        keys = ("target", "device", "cpu", "cpu class", "accuracy", "agreement_pct", "max_abs_diff",
                "latency_p50_ms", "latency_p90_ms", "threads", "status")
        blocks.append(Paragraph("On devices (edgekit validate --device): same holdout and reference, latency "
                                "measured on the device.", "note"))
        blocks.append(_generic_table(rows, keys, skip=tuple(k for r in rows for k in r if k not in keys)))
    return blocks


def _artifacts(arts: list, changed: list[str], root: Path) -> Section:
    rows, marks = [], []
    for a in arts:
        rows.append([a["path"], str(a.get("kind", "")), str(a.get("stage", "")), str(a.get("target", "") or ""),
                     fmt_bytes(a.get("bytes")), fmt_bytes(a.get("gzip_bytes")), str(a.get("sha256", ""))[:12]])
        marks.append("fail" if a["path"] in changed else "")
    if not rows:
        return Section("Artifacts", "artifacts", [Paragraph("The manifest lists no artifacts.", "note")])
    from edgekit.report.artifact_ops import artifact_ops_blocks

    table = Table(["path", "kind", "stage", "target", "bytes", "gzip", "sha256"], rows,
                  ["l", "l", "l", "l", "r", "r", "l"], marks)
    return Section("Artifacts", "artifacts", [table, *artifact_ops_blocks(arts, root)])


def _environment(man: Mapping, stages: Mapping) -> Section:
    blocks: list = []
    machine = man.get("machine") if isinstance(man.get("machine"), Mapping) else {}
    if machine:
        blocks.append(KeyValues([(str(k), str(v)) for k, v in machine.items()]))
    versions = man.get("versions") if isinstance(man.get("versions"), Mapping) else {}
    if versions:
        blocks.append(Details(f"Library versions ({len(versions)})",
                              Table(["library", "version"], [[str(k), str(v)] for k, v in versions.items()],
                                    ["l", "l"])))
    hashes = [(name, s.get("config_hash")) for name, s in stages.items()
              if isinstance(s, Mapping) and s.get("config_hash")]
    if hashes:
        blocks.append(Paragraph("Config hashes: " + ", ".join(f"{n} {h}" for n, h in hashes) + "."))
    return Section("Environment", "environment", blocks or [Paragraph("No environment recorded.", "note")])


def _cards(train: Mapping | None, deploy: list[DeployRow], gates: Mapping | None,
           changed: list[str]) -> list[tuple[str, str, str]]:
    cards = []
    tm = _map((train or {}).get("metrics"))
    if _num(tm.get("test_accuracy")):
        cards.append(("reference accuracy", fmt_value("accuracy", tm["test_accuracy"]), ""))
    if _num(tm.get("params")):
        cards.append(("parameters", f"{tm['params']:,}", ""))
    small = smallest(deploy)
    if small:
        names, b = small
        cards.append((f"smallest deployable artifact ({', '.join(names)})", fmt_bytes_kib(b), ""))
    fast = fastest(deploy)
    if fast:
        names, ms = fast
        cards.append((f"fastest p50 on this CPU ({', '.join(names)})", us_text(1000 * ms), ""))
    checks = _map((gates or {}).get("metrics")).get("checks")
    if isinstance(checks, list) and checks:
        bad = sum(1 for c in checks if isinstance(c, Mapping) and not c.get("passed"))
        cards.append(("gates", f"{len(checks) - bad}/{len(checks)} passed", "fail" if bad else "pass"))
    cards.append(("file integrity", "changed" if changed else "verified", "fail" if changed else "pass"))
    return cards


# -- helpers -------------------------------------------------------------------------------
def _history(arts: list, root: Path) -> tuple[list[dict], str]:
    hist = [a for a in arts if a.get("kind") == "history"]
    if not hist:
        return [], "the manifest lists no history file."
    hist.sort(key=lambda a: a.get("stage") != "train")
    p = root / hist[0]["path"]
    try:
        if not p.is_file():  # a folder, a device or a pipe is not a history file
            raise FileNotFoundError(p)
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [], f"{hist[0]['path']} is missing."
    except RecursionError:
        return [], f"{hist[0]['path']} is nested too deeply to be a history."
    except (OSError, ValueError) as e:
        return [], f"{hist[0]['path']} is not readable JSON ({type(e).__name__})."
    if not isinstance(data, list) or not data or not all(isinstance(r, dict) for r in data):
        return [], f"{hist[0]['path']} holds no per-epoch records."
    return data, ""


def _find_artifact(arts: list, root: Path, path: Any) -> dict | None:
    """The artifact entry for ``path`` (relative to the run folder, the working folder, or absolute)."""
    if not isinstance(path, str) or not path:
        return None
    for a in arts:
        if a.get("path") == path:
            return dict(a)
    wanted = {_resolve(root / path), _resolve(Path(path))} - {None}
    for a in arts:
        if _resolve(root / a["path"]) in wanted:
            return dict(a)
    for p in wanted:
        if p.is_file():
            return {"path": path, "bytes": p.stat().st_size}
    same_name = [a for a in arts if Path(a["path"]).name == Path(path).name]
    return dict(same_name[0]) if len(same_name) == 1 else None  # a path relative to another working folder


def _resolve(p: Path) -> Path | None:
    try:
        return p.resolve()
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop
        return None


def _train_title(cfg: Mapping) -> str:
    return " / ".join(str(cfg[k]) for k in ("model", "optimizer", "schedule") if cfg.get(k))


def _stage(stages: Mapping, name: str) -> Mapping | None:
    s = stages.get(name)
    return s if isinstance(s, Mapping) else None


def _num(v: Any) -> bool:
    return plots._num(v)


def _map(v: Any) -> Mapping:
    """``v`` when it is a mapping, else an empty one (a damaged manifest field reads as absent)."""
    return v if isinstance(v, Mapping) else {}


def _list(v: Any) -> list:
    return v if isinstance(v, list) else []


__all__ = ["build_report"]
