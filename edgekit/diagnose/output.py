"""diagnose.json, diagnose.md and diagnose.png (per-layer bar plot), written atomically."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgekit.diagnose.api import DiagnoseResult, fix_layers

FILES = ("diagnose.json", "diagnose.md", "diagnose.png")
COLUMNS = ["layer", "dtype", "scale", "rmse", "snr (dB)", "cosine", "nsr added", "recovered (pt)"]


def rows(result: DiagnoseResult | dict[str, Any]) -> list[dict[str, Any]]:
    """The table's rows (worst first) from a result or its diagnose.json."""
    layers = result.to_dict()["layers"] if isinstance(result, DiagnoseResult) else result["layers"]

    def num(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    return [{"layer": r["name"], "dtype": r["dtype"], "scale": num(r["scale"], ".4g"), "rmse": num(r["rmse"], ".4g"),
             "snr (dB)": num(r["snr_db"], ".1f"), "cosine": num(r["cosine"], ".4f"),
             "nsr added": num(r["nsr_added"], ".3g"), "recovered (pt)": num(r["recovered_pt"], "+.1f")}
            for r in layers]


def summary(d: dict[str, Any]) -> str:
    s = (f"float {100 * d['float_accuracy']:.2f}%, artifact {100 * d['artifact_accuracy']:.2f}% "
         f"(drop {d['drop_pt']:.2f} pt) on {d['samples']} holdout images")
    fix = d.get("fix")
    repair, layers = fix_layers(fix) if fix else ("keep_float", [])
    how = "in float" if repair == "keep_float" else "at 16-bit activations"
    agree = fix.get("min_agreement") is not None if fix else False

    def at(when: str) -> str:
        return f"{100 * fix[when + '_accuracy']:.2f}%" + (f" (agreement {fix[when + '_agreement_pct']:.2f}%)"
                                                          if agree else "")

    if fix and not layers:
        s += f"; nothing to repair (the re-export is at {at('after')})"
    elif fix:
        s += f"; {', '.join(layers)} {how}: {at('before')} -> {at('after')}"
        if not fix["within"]:
            s += f" (still more than {fix['max_drop_pt']} pt below float" + (
                f" or below {fix['min_agreement']:g}% agreement)" if agree else ")")
    return s


def markdown(d: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(["---"] + ["---:"] * (len(COLUMNS) - 1)) + "|"]
    lines += ["| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in rows(d)]
    return (f"# diagnose: {d['artifact']}\n\n{summary(d)}.\n\nRanked by the noise-to-signal ratio each layer adds "
            "(recovered: accuracy gained when that layer alone stays float).\n\n" + "\n".join(lines) + "\n")


def bar_plot(d: dict[str, Any]) -> bytes:
    from edgekit.report.plots import png_bytes, pyplot

    layers = d["layers"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 0.4 * len(layers) + 1.2))
    names = [r["name"] for r in layers][::-1]
    ax.barh(names, [max(r["nsr_added"], 0) for r in layers][::-1], color="#d62728")
    ax.set_xlabel("noise-to-signal ratio added at the layer")
    ax.set_title("int8 error by Keras layer", fontsize=11)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return png_bytes(fig)


def write(result: DiagnoseResult, out: str | os.PathLike, force: bool = False, dataset: Any = None) -> list[Path]:
    """Write the three files into ``out`` and merge a ``diagnose`` stage into its manifest."""
    from edgekit.artifacts import Artifact, prepare_out_dir, write_bytes, write_json, write_text
    from edgekit.manifest import begin_stage, update_manifest

    out_dir = prepare_out_dir(out, force, expect=FILES)
    d = result.to_dict()
    begin_stage(out_dir, "diagnose")  # readers refuse the folder until the manifest below is written
    paths = [write_json(out_dir / FILES[0], d), write_text(out_dir / FILES[1], markdown(d)),
             write_bytes(out_dir / FILES[2], bar_plot(d))]
    kinds = ("json", "markdown", "png")
    config = {"artifact": d["artifact"], "target": d["target"], "samples": d["samples"]}
    update_manifest(out_dir, "diagnose", config=config,
                    metrics=d,
                    artifacts=[Artifact.from_file(p, k, out_dir) for p, k in zip(paths, kinds)], dataset=dataset)
    return paths
