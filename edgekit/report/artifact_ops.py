"""The report's per-artifact block: what ``edgekit inspect ARTIFACT`` reads from each .tflite of
the run (parsed, never run): ops by type, MACs, parameters, the peak-activation op and the input
and output quantization a firmware or app needs."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from edgekit.report.blocks import Details, Table
from edgekit.report.units import fmt_bytes

MAX_ARTIFACTS = 8  # a run with more .tflite files gets the first ones (the manifest order)


def artifact_ops_blocks(arts: list[Mapping[str, Any]], root: Path) -> list[Details]:
    """One collapsible table per .tflite artifact of the run; artifacts that cannot be read are left out."""
    from edgekit.errors import EdgekitError
    from edgekit.models import inspect_artifact

    blocks = []
    for a in [a for a in arts if str(a.get("path", "")).endswith(".tflite")][:MAX_ARTIFACTS]:
        try:
            r = inspect_artifact(root / a["path"])
        except (EdgekitError, OSError):
            continue
        blocks.append(Details(f"{a['path']}: {sum(r['op_counts'].values())} ops, {r['macs'] / 1e6:.2f} M MACs",
                              Table(["", ""], _rows(r, a.get("target") == "edgetpu"), ["l", "l"])))
    return blocks


def _rows(r: Mapping[str, Any], edgetpu: bool) -> list[list[str]]:
    ops = ", ".join(f"{op} {n}" for op, n in sorted(r["op_counts"].items(), key=lambda kv: (-kv[1], kv[0])))
    rows = [["ops", ops], ["MACs per image", f"{r['macs']:,}"], ["parameters", fmt_bytes(r["parameter_bytes"])]]
    peak = r.get("peak") or {}
    if peak:
        rows.append(["peak activations", f"{fmt_bytes(peak.get('activation_bytes'))} at op {peak.get('index')} "
                                         f"{peak.get('op')} (inputs + outputs of one op: an estimate)"])
    for side in ("inputs", "outputs"):
        for t in r.get(side) or []:
            rows.append([side[:-1], f"{t.get('name')} {list(t.get('shape') or [])} {t.get('dtype')}{_quant(t)}"])
    tpu = r.get("edgetpu") or {}
    if edgetpu and tpu.get("summary"):  # other files keep a dynamic batch: only this one is compiled
        rows.append(["Edge TPU", str(tpu["summary"])])
    return rows


def _quant(t: Mapping[str, Any]) -> str:
    q = t.get("quantization") or {}
    scale, zp = q.get("scale"), q.get("zero_point")
    if isinstance(scale, list):
        scale = scale[0] if len(scale) == 1 else None
    if isinstance(zp, list):
        zp = zp[0] if len(zp) == 1 else None
    return f", scale {scale:.6g}, zero point {zp}" if isinstance(scale, (int, float)) and scale else ""
