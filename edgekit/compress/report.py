"""compression.json and compression.md: per-stage and per-layer results of a compression run."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.artifacts import write_json, write_text
from edgekit.compress.config import CompressConfig

FORMAT = "edgekit-compression/1"
FILES = {
    "keras_bytes": "the stage's model with every tfmot wrapper removed (float32 weights), saved as .keras",
    "tflite_int8_bytes": "the full-int8 .tflite (int8 weights, activations, input and output) the stage's model "
                         "converts to with edgekit.export.convert.to_tflite; QAT stages use their learned ranges, "
                         "other stages are calibrated on the representative training images",
    "tflite_float32_bytes": "the input model converted to a float32 .tflite (the baseline of the ratios)",
    "gzip": "*_gzip_bytes: the same file gzip'd at level 9 (zeros and shared values only shrink a download "
            "once compressed)",
}


def to_json(metrics: dict[str, Any], config: CompressConfig) -> dict[str, Any]:
    return {"format": FORMAT, "technique": config.technique, "config": config.to_dict(), "files": FILES, **metrics}


def _b(n: int) -> str:
    return f"{n:,}"


def to_markdown(metrics: dict[str, Any], config: CompressConfig) -> str:
    """The human-readable report."""
    inp, fin, r = metrics["input"], metrics["final"], metrics["ratios"]
    lines = [
        f"# Compression report: {config.technique}",
        "",
        f"Holdout accuracy {inp['accuracy']:.4f} -> {fin['accuracy']:.4f} "
        f"({-fin['accuracy_drop_pt']:+.2f} pt). The int8 .tflite is {_b(fin['tflite_int8_bytes'])} B "
        f"({_b(fin['tflite_int8_gzip_bytes'])} B gzip'd): **{r['tflite_int8_gzip_vs_input_float32']:.1f}x** smaller "
        f"than the input's float32 .tflite ({_b(inp['tflite_float32_bytes'])} B), "
        f"{r['tflite_int8_gzip_vs_input_int8_gzip']:.2f}x smaller than the input's own int8 .tflite gzip'd.",
        "",
        "## Stages",
        "",
        "| stage | method | accuracy | drop (pt) | int8 .tflite accuracy | sparsity | non-zero params | max unique/kernel | .keras B | "
        ".keras gzip B | int8 .tflite B | int8 .tflite gzip B | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in metrics["stages"]:
        lines.append(
            f"| {s['stage']} | {s.get('method', '')} | {s['accuracy']:.4f} | {s['accuracy_drop_pt']:+.2f} | "
            f"{s['tflite_int8_accuracy']:.4f} | "
            f"{s['sparsity']:.3f} | {_b(s['nonzero_params'])} | {s['max_unique_values']:,} | {_b(s['keras_bytes'])} | "
            f"{_b(s['keras_gzip_bytes'])} | {_b(s['tflite_int8_bytes'])} | {_b(s['tflite_int8_gzip_bytes'])} | "
            f"{s['seconds']:.1f} |"
        )
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
