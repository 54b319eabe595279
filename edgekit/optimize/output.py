"""What ``optimize`` writes: optimize.json, optimize.md (every candidate, the Pareto front),
optimize.png (the front), the winner's recipe.yaml (re-runnable with ``edgekit run``), its
model.keras and artifact, and an ``optimize`` stage in the folder's manifest.json."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Mapping

from edgekit.artifacts import atomic_path, write_bytes, write_json, write_text

FILES = ("optimize.json", "optimize.md", "optimize.png", "recipe.yaml")
COLUMNS = ["#", "candidate", "technique", "val acc", "drop (pt)", "margin (pt)", "raw B", "gzip B", "latency us", "s",
           "meets", "front"]


def rows(d: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One table row per candidate, in evaluation order."""
    front = set(d["pareto_front"])
    out = []
    for r in d["candidates"]:
        out.append({"#": r["index"], "candidate": r["key"], "technique": r["technique"],
                    "val acc": f"{r['val_accuracy']:.4f}", "drop (pt)": f"{r['val_drop_pt']:+.2f}",
                    "margin (pt)": f"{r.get('margin_pt', 0.0):.2f}",
                    "raw B": f"{r['raw_bytes']:,}", "gzip B": f"{r['gzip_bytes']:,}",
                    "latency us": f"{r['latency_us']:.1f}", "s": f"{r['seconds']:.0f}",
                    "meets": "yes" if not r["missed"] else "; ".join(r["missed"]),
                    "front": "*" if r["key"] in front else "", "node": r.get("node", "")})
    return out


def columns(d: Mapping[str, Any]) -> list[str]:
    """The table's columns: with ``node`` when candidates were measured on workers (latency compares
    only between candidates timed on one CPU class)."""
    return COLUMNS + (["node"] if any(r.get("node") for r in d["candidates"]) else [])


def summary(d: Mapping[str, Any]) -> str:
    """One paragraph: the winner, its holdout figure, and what it missed (if anything)."""
    w = d.get("winner")
    if w is None:
        return "No candidate was measured."
    h = d["holdout"]
    head = "Winner" if d["met"] else "No candidate meets the constraints; nearest"
    text = (f"{head}: {w['key']} ({w['technique']}): {w['raw_bytes']:,} B raw / {w['gzip_bytes']:,} B gzip, "
            f"{w['latency_us']:.1f} us (LiteRT, batch 1, 1 thread), validation drop {w['val_drop_pt']:+.2f} pt; "
            f"holdout accuracy {h['accuracy']:.4f} vs {h['reference_accuracy']:.4f} (drop {h['drop_pt']:+.2f} pt, "
            f"{h['samples']} images the search never saw). {len(d['candidates'])} candidates in "
            f"{d['seconds'] / 60:.1f} min" + (f" ({len(d['failed'])} more failed)" if d.get("failed") else ""))
    if not d["met"]:
        text += f"; it misses: {'; '.join(w['missed'])}"
    return text + "."


def markdown(d: Mapping[str, Any]) -> str:
    def table(rs: list[dict[str, Any]]) -> str:
        cols = columns(d)
        lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
        return "\n".join(lines + ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rs])

    all_rows = rows(d)
    front = [r for r in all_rows if r["front"]]
    c = d["config"]
    limits = [f"accuracy drop <= {c['max_accuracy_drop']:g} pt"] + \
        ([f"raw size <= {c['max_size']:,} B"] if c.get("max_size") else []) + \
        ([f"latency <= {c['max_latency_us']:g} us"] if c.get("max_latency_us") else [])
    sens = "\n".join(f"| {s['layer']} | {s['params']:,} | {_pt(s['channels_drop_pt'])} | {_pt(s['prune_drop_pt'])} |"
                     for s in d["sensitivity"])
    return (f"# optimize: {d['model']} -> {c['target']}\n\n{summary(d)}\n\n"
            f"Constraints: {', '.join(limits)}; budget {c['budget_minutes']:g} min. Accuracy of each artifact in its "
            f"runtime on the {d['validation_samples']} validation images (reference: the input model, "
            f"{d['reference_val_accuracy']:.4f}); latency: {d['latency_note']}.\n\n"
            + (f"{d['margin_note'][0].upper()}{d['margin_note'][1:]}\n\n" if d.get("margin_note") else "")
            + "The Pareto front is drawn from the candidates that meet every constraint (from all of them when "
            "none does).\n\n"
            f"Re-run the winner: `edgekit run {d['recipe']} --out RUN`.\n\n"
            "## Pareto front (raw bytes, gzip bytes, latency, validation accuracy)\n\n"
            f"{table(front)}\n\n![Pareto front](optimize.png)\n\n## Every candidate (evaluation order)\n\n"
            f"{table(all_rows)}\n\n{_failed(d)}## Per-layer sensitivity (validation drop, no fine-tune)\n\n"
            "| layer | params | channels removed (probe) | pruned (probe) |\n|---|---:|---:|---:|\n"
            f"{sens}\n")


def _failed(d: Mapping[str, Any]) -> str:
    """The candidates that could not be built or run, with why (empty when none)."""
    failed = d.get("failed") or []
    if not failed:
        return ""
    return ("## Failed candidates (the search went on)\n\n"
            + "".join(f"- {f['key']}: {f['failed']}\n" for f in failed) + "\n")


def plot(d: Mapping[str, Any]) -> bytes:
    """Validation drop against gzip'd and raw bytes, and against latency; the front joined by a line."""
    from edgekit.report.plots import png_bytes, pyplot

    plt = pyplot()
    cands = d["candidates"]
    front = [r for r in cands if r["key"] in set(d["pareto_front"])]
    fig, axes = plt.subplots(1, 3, figsize=(12.0, 3.8))
    for ax, key, label in zip(axes, ("raw_bytes", "gzip_bytes", "latency_us"),
                              ("raw .tflite bytes", "gzip'd bytes", "latency (us, batch 1, 1 thread)")):
        ok = [r for r in cands if not r["missed"]]
        bad = [r for r in cands if r["missed"]]
        ax.scatter([r[key] for r in bad], [r["val_drop_pt"] for r in bad], c="#bbbbbb", label="misses a constraint")
        ax.scatter([r[key] for r in ok], [r["val_drop_pt"] for r in ok], c="#1f77b4", label="meets")
        pts = sorted((r[key], r["val_drop_pt"]) for r in front)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o", mfc="none", ms=11, c="#d62728", label="Pareto front")
        w = d.get("winner")
        if w is not None:
            ax.plot([w[key]], [w["val_drop_pt"]], "*", ms=14, c="#2ca02c", label="winner")
        ax.axhline(d["config"]["max_accuracy_drop"], ls="--", c="#888888", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("validation drop (pt)")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle("optimize: every candidate (drop vs size and latency)", fontsize=11)
    fig.tight_layout()
    return png_bytes(fig)


def write(out: Path, d: dict[str, Any], recipe_yaml: str, dataset: Any, config: Any) -> list[tuple[str, str]]:
    """Write the reports, the recipe and the winner's files into ``out``; merge the manifest stage."""
    from edgekit.manifest import write_stage

    files = [("optimize.json", "report"), ("optimize.md", "report"), ("optimize.png", "plot"),
             ("recipe.yaml", "recipe")]
    w = d.get("winner")
    if w is not None:
        artifact = Path(w["artifact"]).name
        _copy(out / w["artifact"], out / artifact)
        files.append((artifact, "tflite"))
        d["winner_artifact"] = artifact
        src = out / w["model"] if w.get("model") else Path(d["model_path"])  # the baseline: the input model
        name = "model" + (src.suffix or ".keras")
        _copy(src, out / name)
        files.append((name, "keras-qat" if w.get("model") and w["candidate"]["quantize"] == "qat" else "keras"))
        d["winner_model"] = name
    write_text(out / "recipe.yaml", recipe_yaml)
    write_bytes(out / "optimize.png", plot(d))
    write_text(out / "optimize.md", markdown(d))
    write_json(out / "optimize.json", d)
    metrics = {k: d[k] for k in ("met", "holdout", "seconds")}
    if w is not None:
        metrics.update({k: w[k] for k in ("key", "val_accuracy", "val_drop_pt", "raw_bytes", "gzip_bytes",
                                          "latency_us")})
        metrics["candidates_measured"] = len(d["candidates"])
    front = set(d["pareto_front"])
    metrics["summary"] = summary(d)
    metrics["table"] = [{"index": r["index"], "key": r["key"], "val_accuracy": r["val_accuracy"],
                         "val_drop_pt": r["val_drop_pt"], "raw_bytes": r["raw_bytes"], "gzip_bytes": r["gzip_bytes"],
                         "latency_us": r["latency_us"], "front": "*" if r["key"] in front else "",
                         "meets": "yes" if not r["missed"] else "; ".join(r["missed"])} for r in d["candidates"]]
    write_stage(out, "optimize", files, config=config, metrics=metrics, dataset=dataset)
    return files


def _copy(src: Path, dest: Path) -> None:
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


def _pt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.2f}"
