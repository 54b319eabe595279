"""The Compression section: the settings that were set, one compact row per stage, notes.

Settings are a key: value list of what is set (no empty or unset options); the stage table
keeps the columns a reader compares (accuracy, sparsity, int8 sizes, arena, latency); every
other measurement is in a stages-as-columns table below it, which stays narrow.
"""
from __future__ import annotations

from typing import Any, Mapping

from edgekit.manifest import finite as _num
from edgekit.report.blocks import Details, KeyValues, Paragraph, Section, Table, fmt_value
from edgekit.report.tables import generic_table, label, scalar

STAGE_KEYS = ("stage", "method", "accuracy", "accuracy_drop_pt", "tflite_int8_accuracy", "sparsity", "nonzero_params",
              "max_unique_values", "tflite_int8_bytes", "tflite_int8_gzip_bytes", "tflm_arena_bytes", "litert_us",
              "tflm_us")
LAYER_KEYS = ("layer", "params", "target_sparsity", "sparsity", "clusters", "unique_values", "max_unique_per_channel")


def compression_section(stage: Mapping) -> Section:
    """Settings, the stage table (the smallest int8 gzip within 1 pt of the best accuracy starred),
    all measurements per stage, the final model and per-layer results."""
    m = _map(stage.get("metrics"))
    blocks: list = []
    settings = settings_items(stage.get("config"))
    if settings:
        blocks.append(KeyValues(settings))
    inp = _map(m.get("input"))
    if inp:
        blocks.append(Paragraph("Input: " + ", ".join(f"{label(k)} {fmt_value(k, v)}" for k, v in inp.items()
                                                      if scalar(v) and v is not None) + "."))
    rows = [r for r in _list(m.get("stages")) if isinstance(r, Mapping)]
    if rows:
        blocks.append(generic_table(rows, STAGE_KEYS, best=best_stage(rows), only=_known(rows)))
        blocks += [Paragraph(n, "note") for n in stage_notes(rows)]
        more = [k for r in rows for k in r if k not in STAGE_KEYS and scalar(r[k])]
        if more:
            blocks.append(Details("All measurements per stage", transposed(rows)))
    else:
        blocks.append(Paragraph("The compress stage recorded no per-stage results.", "note"))
    final = _map(m.get("final"))
    if final:
        blocks.append(Paragraph("Final model: " + ", ".join(
            f"{label(k)} {fmt_value(k, v)}" for k, v in final.items()
            if scalar(v) and v is not None and k != "stage") + "."))
    ratios = _map(m.get("ratios"))
    if "tflite_int8_vs_input_int8" in ratios:
        from edgekit.compress.report import ratios_line

        blocks.append(Paragraph(f"Ratios of the final int8 .tflite: {ratios_line(dict(ratios))}."))
    per_layer = [r for r in _list(m.get("per_layer")) if isinstance(r, Mapping)]
    if per_layer:
        blocks.append(Details(f"Per-layer compression ({len(per_layer)} layers)",
                              generic_table(per_layer, LAYER_KEYS, only=True)))
    return Section("Compression", "compression", blocks)


def settings_items(cfg: Any) -> list[tuple[str, str]]:
    """``(key, value)`` for each setting that is set: no null, empty list or empty mapping."""
    if not isinstance(cfg, Mapping):
        return []
    out = []
    for k, v in cfg.items():
        if v is None or v == "" or (isinstance(v, (list, tuple, Mapping)) and not v):
            continue
        out.append((str(k).replace("_", " "), _setting(v)))
    return out


def transposed(rows: list[Mapping], name_key: str = "stage") -> Table:
    """Every scalar measurement as a row, one column per record named by ``name_key`` (narrow however
    many keys there are)."""
    keys = [k for k in dict.fromkeys(k for r in rows for k in r if k != name_key and scalar(r[k]))
            if any(r.get(k) not in (None, "") for r in rows)]
    names = [str(r.get(name_key, f"#{i + 1}")) for i, r in enumerate(rows)]
    body = [[label(k)] + [fmt_value(k, r.get(k)) for r in rows] for k in keys]
    return Table(["measurement", *names], body)


def stage_notes(rows: list[Mapping]) -> list[str]:
    """Layers left dense, emptied output channels and latency errors, one line per stage."""
    notes = []
    for r in rows:
        name = r.get("stage", "?")
        dense = r.get("left_dense")
        if isinstance(dense, list) and dense:
            notes.append(f"{name}: left dense (nothing pruned): {', '.join(map(str, dense))}.")
        emptied = _map(r.get("emptied_channels"))
        if emptied:
            parts = ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in emptied.items() if isinstance(v, list) and len(v) == 2)
            notes.append(f"{name}: output channels left without any weight: {parts}.")
        for k in ("litert_error", "tflm_error"):
            if r.get(k):
                notes.append(f"{name}: {label(k)}: {r[k]}")
    return notes


def best_stage(rows: list[Mapping]) -> int | None:
    """The stage with the smallest int8 gzip size among those within 1 pt of the best accuracy."""
    scored = [(i, r) for i, r in enumerate(rows) if _num(r.get("accuracy")) and _num(r.get("tflite_int8_gzip_bytes"))]
    if not scored:
        return None
    top = max(r["accuracy"] for _, r in scored)
    ok = [(r["tflite_int8_gzip_bytes"], i) for i, r in scored if top - r["accuracy"] <= 0.01]
    return min(ok)[1]


def _known(rows: list[Mapping]) -> bool:
    """Rows that hold the compress stage's usual keys get only those columns; others show all."""
    return sum(k in STAGE_KEYS for r in rows for k in r) >= 4 * len(rows)


def _setting(v: Any) -> str:
    if isinstance(v, Mapping):
        return ", ".join(f"{k}={_setting(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return ", ".join(_setting(x) for x in v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _map(v: Any) -> Mapping:
    return v if isinstance(v, Mapping) else {}


def _list(v: Any) -> list:
    return v if isinstance(v, list) else []


__all__ = ["compression_section", "settings_items", "transposed", "best_stage"]
