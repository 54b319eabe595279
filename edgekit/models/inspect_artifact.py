"""``inspect_artifact(path)``: what an exported .tflite or .onnx file holds, op by op, parse only.

An artifact may come from anywhere, so it is only parsed (the flatbuffer / protobuf readers of
:mod:`edgekit.models.inspect_tflite` and :mod:`edgekit.models.inspect_onnx`), never loaded by a
runtime here, and refused above :data:`MAX_ARTIFACT_BYTES`. A file that is not what it claims is
one InputError line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.errors import InputError
from edgekit.formats.tflite_flatbuffer import IDENTIFIER

MAX_ARTIFACT_BYTES = 512 << 20  # far above any small vision model; flatbuffers stop at 2 GiB anyway
SUFFIXES = (".tflite", ".onnx")


def is_tflite(path: Path) -> bool:
    """True for a ``.tflite`` file or any file with the TFLite identifier ('TFL3' at byte 4)."""
    if path.suffix.lower() == ".tflite":
        return True
    try:
        with path.open("rb") as f:
            return f.read(8)[4:8] == IDENTIFIER
    except OSError:
        return False


def _checked(path: Path) -> Path:
    if not path.is_file():
        raise InputError(f"{str(path)!r} is not a file; inspect reads a .tflite or .onnx file.")
    size = path.stat().st_size
    if size > MAX_ARTIFACT_BYTES:
        raise InputError(f"{str(path)!r} is {size:,} bytes, over the {MAX_ARTIFACT_BYTES >> 20} MiB edgekit "
                         "inspects; it is not a small edge model.")
    return path


def inspect_artifact(path: str | Path) -> dict[str, Any]:
    """The per-op report of a .tflite (op table, MACs, activation bytes, peak op, Edge TPU mapping,
    quantization) or .onnx file (node table, shapes, QDQ scales); a plain, JSON-ready dict."""
    p = _checked(Path(path))
    if is_tflite(p):
        from edgekit.models.inspect_tflite import inspect_tflite

        return inspect_tflite(p.read_bytes(), str(p))
    if p.suffix.lower() == ".onnx":
        from edgekit.models.inspect_onnx import inspect_onnx

        return inspect_onnx(p)
    raise InputError(f"{str(p)!r} is neither a TFLite flatbuffer nor an .onnx file; the per-op table reads those two.")


# --- text ---

def _shape(dims: list[Any] | None) -> str:
    return "?" if dims is None else "x".join("?" if d is None else str(d) for d in dims) or "scalar"


def _first(values: list[Any]) -> Any:
    return values[0] if values else "?"


def _quant(q: dict[str, Any] | None) -> str:
    if not q:
        return ""
    if q.get("channels"):
        return f" per-channel x{q['channels']}"
    return f" scale {q['scale'][0]:.6g} zp {_first(q['zero_point'])}"


def _tensor(t: dict[str, Any]) -> str:
    return f"{t['name']} {t['dtype']} [{_shape(t['shape'])}]{_quant(t['quantization'])}"


def _short(text: str, n: int = 70) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _tflite_lines(r: dict[str, Any]) -> list[str]:
    lines = [f"  {'#':>3}  {'op':<20} {'in -> out shape':<26} {'dtype':<16} {'out scale / zp':<22} "
             f"{'MACs':>12} {'act. bytes':>11}  Edge TPU"]
    for o in r["ops"]:
        src, dst = (o["inputs"] or [None])[0], (o["outputs"] or [None])[0]
        shape = f"{_shape(src['shape']) if src else '-'} -> {_shape(dst['shape']) if dst else '-'}"
        dtype = f"{src['dtype'] if src else '-'}->{dst['dtype'] if dst else '-'}"
        q = dst["quantization"] if dst else None
        qs = "" if not q else (f"{q['scale'][0]:.4g} / {_first(q['zero_point'])}" if not q.get("channels")
                               else f"per-channel x{q['channels']}")
        tpu = o["edgetpu"]
        where = "?" if tpu is None else ("yes" if tpu["mapped"] else f"no: {_short(tpu['reason'])}")
        lines.append(f"  {o['index']:>3}  {o['op']:<20} {shape:<26} {dtype:<16} {qs:<22} {o['macs']:>12,} "
                     f"{o['activation_bytes']:>11,}  {where}")
    p = r["peak"]
    if p:
        lines.append(f"  peak activation memory: op #{p['index']} {p['op']}, {p['activation_bytes']:,} bytes ({p['how']})")
    lines.append(f"  Edge TPU: {r['edgetpu']['summary']}")
    return lines


def _onnx_lines(r: dict[str, Any]) -> list[str]:
    lines = [f"  {'#':>3}  {'op':<22} {'inputs -> outputs'}"]
    for n in r["ops"]:
        ins = ", ".join(_tensor(t) for t in n["inputs"] if not t["constant"]) or "(constants)"
        outs = ", ".join(_tensor(t) for t in n["outputs"])
        lines.append(f"  {n['index']:>3}  {n['op']:<22} {ins} -> {outs}")
    if "shapes_note" in r:
        lines.append(f"  note: {r['shapes_note']}; shapes are the declared ones")
    return lines


def describe_artifact(r: dict[str, Any]) -> list[str]:
    """The report as lines of text (what ``edgekit inspect`` prints for an artifact without ``--json``)."""
    ops = ", ".join(f"{k} x{v}" for k, v in sorted(r["op_counts"].items(), key=lambda kv: (-kv[1], kv[0])))
    head = f"{r['path']}: {r['format']}, {r['bytes']:,} bytes, {len(r['ops'])} ops"
    if r["format"] == "tflite":
        head += f", {r['macs']:,} MACs, {r['parameter_bytes']:,} parameter bytes"
    else:
        head += f" ({r['quantized_nodes']} compute nodes quantized), opset {r['opset'].get('ai.onnx', '?')}"
    lines = [head, *[f"  input:  {_tensor(t)}" for t in r["inputs"]], *[f"  output: {_tensor(t)}" for t in r["outputs"]],
             f"  ops:    {ops}"]
    return lines + (_tflite_lines(r) if r["format"] == "tflite" else _onnx_lines(r))
