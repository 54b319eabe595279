"""compression.json and compression.md: per-stage and per-layer results of a compression run."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.artifacts import write_json, write_text
from edgekit.compress.config import CompressConfig
from edgekit.compress.prune import describe_emptied

FORMAT = "edgekit-compression/1"
FILES = {
    "keras_bytes": "the stage's model with every tfmot wrapper removed (float32 weights), saved as .keras",
    "tflite_int8_bytes": "the full-int8 .tflite (int8 weights, activations, input and output) the stage's model "
                         "converts to with edgekit.export.convert.to_tflite; QAT stages use their learned ranges, "
                         "other stages are calibrated on the representative training images",
    "tflite_float32_bytes": "the input model converted to a float32 .tflite (the baseline of the ratios)",
    "gzip": "*_gzip_bytes: the same file gzip'd at level 9 (zeros and shared values only shrink a download "
            "once compressed)",
    "bits_per_param": "int8 .tflite bytes * 8 / parameters (raw; gzip_bits_per_param: gzip'd bytes)",
    "tflm_arena_bytes": "the smallest TFLite Micro tensor arena (RAM) that allocates and runs the int8 .tflite",
    "latency": "litert_us / tflm_us: median batch-1 latency of the int8 .tflite (*_best_us: fastest run), "
               "LiteRT with 1 thread (XNNPACK) and TFLite Micro (reference kernels), on the machine that ran "
               "the compression; speed-up ratios use the medians",
}


def to_json(metrics: dict[str, Any], config: CompressConfig) -> dict[str, Any]:
    return {"format": FORMAT, "technique": config.technique, "config": config.to_dict(), "files": FILES, **metrics}


def _b(n: int) -> str:
    return f"{n:,}"


def _opt(v: Any, fmt: str = ",.0f") -> str:
    return "n/a" if v is None else format(v, fmt)


def _lat(row: dict[str, Any], runtime: str, fmt: str) -> str:
    if row.get(f"{runtime}_us") is None:
        return "n/a"
    best = row.get(f"{runtime}_best_us")
    return f"{row[f'{runtime}_us']:{fmt}} / " + ("n/a" if best is None else f"{best:{fmt}}")


def _x(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f}x"


def ratios_line(r: dict[str, Any]) -> str:
    """One line of ratios, each saying what it divides (against the input's float32 and int8 .tflite)."""
    return (
        f"vs the input's float32 .tflite: raw/raw {_x(r.get('tflite_int8_vs_input_float32'))}, gzip/gzip "
        f"{_x(r.get('tflite_int8_gzip_vs_input_float32_gzip'))}; vs the input's int8 .tflite: raw/raw "
        f"{_x(r.get('tflite_int8_vs_input_int8'))}, gzip/gzip {_x(r.get('tflite_int8_gzip_vs_input_int8_gzip'))}, "
        f"LiteRT {_x(r.get('litert_speedup_vs_input_int8'))} faster, TFLM {_x(r.get('tflm_speedup_vs_input_int8'))} "
        f"faster, TFLM arena {_x(r.get('tflm_arena_vs_input_int8'))} smaller"
    )


def to_markdown(metrics: dict[str, Any], config: CompressConfig) -> str:
    """The human-readable report: a compact stage table and a ratios line."""
    inp, fin, r = metrics["input"], metrics["final"], metrics["ratios"]
    lines = [
        f"# Compression report: {config.technique}",
        "",
        f"Holdout accuracy {inp['accuracy']:.4f} -> {fin['accuracy']:.4f} "
        f"({-fin['accuracy_drop_pt']:+.2f} pt); int8 .tflite on LiteRT {fin['tflite_int8_accuracy']:.4f}. "
        f"The int8 .tflite is {_b(fin['tflite_int8_bytes'])} B raw (flashed), "
        f"{_b(fin['tflite_int8_gzip_bytes'])} B gzip'd (downloaded); the input's float32 .tflite is "
        f"{_b(inp['tflite_float32_bytes'])} B raw / {_b(inp['tflite_float32_gzip_bytes'])} B gzip'd.",
        "",
        f"Ratios: {ratios_line(r)}.",
        "",
        "## Stages",
        "",
        "| stage | method | accuracy | drop (pt) | int8 .tflite acc | sparsity | params | MACs | .tflite B | gzip B | "
        "bits/param raw / gzip | TFLM arena B | LiteRT us p50 / best | TFLM us p50 / best | s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in metrics["stages"]:
        bits = (f"{s['bits_per_param']:.2f} / {s['gzip_bits_per_param']:.2f}" if s.get("bits_per_param") is not None
                else "n/a")
        lines.append(
            f"| {s['stage']} | {s.get('method', '')} | {s['accuracy']:.4f} | {s['accuracy_drop_pt']:+.2f} | "
            f"{s['tflite_int8_accuracy']:.4f} | {s['sparsity']:.3f} | {_opt(s.get('params'))} | "
            f"{_opt(s.get('macs'))} | {_b(s['tflite_int8_bytes'])} | {_b(s['tflite_int8_gzip_bytes'])} | {bits} | "
            f"{_opt(s.get('tflm_arena_bytes'))} | {_lat(s, 'litert', '.1f')} | {_lat(s, 'tflm', '.0f')} | "
            f"{s['seconds']:.1f} |"
        )
    notes = [f"- {s['stage']}: left dense (tfmot prunes none of their weights): {', '.join(s['left_dense'])}"
             for s in metrics["stages"] if s.get("left_dense")]
    notes += [f"- {s['stage']}: {describe_emptied(s['emptied_channels'])}" for s in metrics["stages"]
              if s.get("emptied_channels")]
    notes += [f"- {s['stage']}: {k} {s[k]}" for s in metrics["stages"] for k in ("litert_error", "tflm_error")
              if s.get(k)]
    if notes:
        lines += ["", *notes]
    lines += [
        "",
        "## Layers (final model)",
        "",
        "| layer | kernel params | target sparsity | sparsity | clusters | unique values | max unique per output channel |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in metrics["per_layer"]:
        t = "" if row.get("target_sparsity") is None else f"{row['target_sparsity']:.2f}"
        c = "" if row.get("clusters") is None else str(row["clusters"])
        lines.append(f"| {row['layer']} | {_b(row['params'])} | {t} | {row['sparsity']:.3f} | {c} | "
                     f"{row['unique_values']:,} | {row['max_unique_per_channel']:,} |")
    lines += ["", "## Which file each size is", ""]
    lines += [f"- `{k}`: {v}." for k, v in FILES.items()]
    lines += [
        "- accuracy: fraction of the holdout split classified correctly by the Keras model (the QAT model "
        "after quantization-aware training); drop in percentage points vs the input model. int8 .tflite "
        "accuracy: the same holdout run through the int8 .tflite with the LiteRT interpreter.",
        "- sparsity: exact zeros over all conv/dense kernel weights; non-zero params counts every float weight "
        "(kernels and biases).",
        "",
        "## Config",
        "",
        "```",
        *(f"{k} = {v!r}" for k, v in config.to_dict().items()),
        "```",
        "",
    ]
    return "\n".join(lines)


def write_reports(out: Path, metrics: dict[str, Any], config: CompressConfig) -> None:
    write_json(Path(out) / "compression.json", to_json(metrics, config))
    write_text(Path(out) / "compression.md", to_markdown(metrics, config))
