"""Tables of manifest records: column labels and the generic dict-rows table."""
from __future__ import annotations

from typing import Any, Mapping

from edgekit.report.blocks import Table, fmt_value

LABELS = {
    "test_accuracy": "test accuracy", "test_loss": "test loss", "final_val_accuracy": "final val accuracy",
    "epochs_run": "epochs", "train_seconds": "train time", "images_per_second": "images/s", "params": "params",
    "macs": "MACs / image", "accuracy_drop_pt": "drop", "nonzero_params": "nonzero params",
    "max_unique_values": "max unique values", "keras_bytes": "keras", "keras_gzip_bytes": "keras gzip",
    "tflite_int8_bytes": "int8 tflite", "tflite_int8_gzip_bytes": "int8 tflite gzip", "seconds": "time",
    "bytes": "size", "gzip_bytes": "gzip", "agreement_pct": "agreement", "max_abs_diff": "max |diff|",
    "mean_abs_diff": "mean |diff|", "latency_p50_ms": "p50", "latency_p90_ms": "p90", "val_loss": "val loss",
    "val_accuracy": "val accuracy", "parameter_bytes": "parameter bytes", "max_diff_limit": "max |diff| limit",
    "tflite_int8_accuracy": "int8 tflite accuracy", "tflm_arena_bytes": "TFLM arena", "litert_us": "LiteRT p50",
    "tflm_us": "TFLM p50 (host)", "litert_best_us": "LiteRT best", "tflm_best_us": "TFLM best (host)",
    "latency_us": "latency", "bits_per_param": "bits/param", "gzip_bits_per_param": "gzip bits/param",
}


def label(key: str) -> str:
    """A column label for a manifest key."""
    return LABELS.get(key, key.replace("_", " "))


def scalar(v: Any) -> bool:
    return v is None or isinstance(v, (int, float, str, bool))


def generic_table(rows: list[Mapping], preferred: tuple[str, ...], skip: tuple[str, ...] = (),
                  best: int | None = None, only: bool = False) -> Table:
    """A table of dicts: preferred keys first (when present), then any other scalar keys (none with
    ``only``). Columns with no value in any row are left out."""
    cols = [k for k in preferred if any(k in r for r in rows)]
    if not only:
        cols += [k for r in rows for k in r if k not in cols and k not in skip and scalar(r[k])]
    cols = [k for k in dict.fromkeys(cols) if any(r.get(k) not in (None, "") for r in rows)]
    body = [[fmt_value(k, r.get(k)) for k in cols] for r in rows]
    align = ["l" if all(isinstance(r.get(k), str) or r.get(k) is None for r in rows) else "r" for k in cols]
    marks = ["best" if i == best else "" for i in range(len(rows))]
    return Table([label(k) for k in cols], body, align, marks)
