"""The deployment sheet: one row per export target with what a device needs and gets.

Flash (the file written to the device), download (that file gzip'd), RAM (the TFLite Micro
tensor arena), batch-1 latency p50/p90 with where it was timed, accuracy and agreement, and the
Edge TPU mapping and cache use. Everything comes from the run's manifest (the export and
validate stages, the artifact list) and the Edge TPU ``analysis.json`` it lists; a value that
is not recorded reads "n/a" with the reason.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping

from edgekit.manifest import finite as _num
from edgekit.report.blocks import Paragraph, Section, Table
from edgekit.report.units import NA, fmt_bytes_kib, ms_as_us, pct, pt

COLUMNS = ["target", "flash (raw)", "download (gzip)", "RAM", "latency p50 / p90", "timed on", "accuracy (drop)",
           "agreement", "Edge TPU"]


RUNTIME_NAMES = {"litert": "LiteRT", "onnxruntime": "ONNX Runtime", "tflite-micro": "TFLite Micro"}


@dataclasses.dataclass
class DeployRow:
    """What one target deploys as, and how it measured."""

    target: str
    runtime: str = ""
    flash: int | None = None
    flash_note: str = ""  # what the flash figure is, or why it is missing
    gzip: int | None = None
    ram: int | None = None
    ram_note: str = ""
    p50_ms: float | None = None
    p90_ms: float | None = None
    timed_on: str = ""
    host_emulated: bool = False  # TFLite Micro run on the host: not device timing
    accuracy: float | None = None
    drop_pt: float | None = None
    agreement_pct: float | None = None
    edgetpu: str = ""
    deployable: bool = True  # False: the file shown is not what ships (an uncompiled Edge TPU model) or failed
    problem: str = ""  # why the target is not deployable

    def cells(self) -> list[str]:
        """The row of :data:`COLUMNS` as text."""
        missing = _first_clause(self.problem) or "not validated"
        flash = fmt_bytes_kib(self.flash) if self.flash is not None else f"{NA}: {self.flash_note or self.problem}"
        if self.flash is not None and self.flash_note:
            flash += f"; {self.flash_note}"
        gzip = fmt_bytes_kib(self.gzip) if self.gzip is not None \
            else f"{NA}: {_first_clause(self.flash_note) or missing}"
        if self.gzip is not None and self.flash and self.gzip:
            gzip += f", ÷{self.flash / self.gzip:.1f}"
        ram = fmt_bytes_kib(self.ram) + (f" {self.ram_note}" if self.ram_note else "") if self.ram is not None \
            else f"{NA}: {self.ram_note}"
        lat = f"{ms_as_us(self.p50_ms)} / {ms_as_us(self.p90_ms)}" if _num(self.p50_ms) else f"{NA}: {missing}"
        acc = f"{pct(self.accuracy)} ({pt(self.drop_pt)})" if _num(self.accuracy) else f"{NA}: {missing}"
        agree = f"{self.agreement_pct:.2f} %" if _num(self.agreement_pct) else f"{NA}: {missing}"
        ram = ram if not (self.problem and self.ram is None) else f"{NA}: {missing}"
        return [self.target, flash, gzip, ram, lat, self.timed_on or f"{NA}: {missing}", acc, agree, self.edgetpu]


def deployment_rows(stages: Mapping, arts: list[Mapping], root: Path) -> list[DeployRow]:
    """One :class:`DeployRow` per target the export or validate stage recorded, in export order."""
    em = _map(_map(stages.get("export")).get("metrics"))
    vt = _map(_map(_map(stages.get("validate")).get("metrics")).get("targets"))
    names = [n for n in dict.fromkeys([*em, *vt]) if isinstance(_map(em.get(n)) or vt.get(n), Mapping)]
    return [_row(n, _map(em.get(n)), _map(vt.get(n)), [a for a in arts if a.get("target") == n], arts, root)
            for n in names]


def deployment_section(rows: list[DeployRow]) -> Section:
    """The "Deployment" section: the table and what its columns mean."""
    if not rows:
        return Section("Deployment", "deployment", [Paragraph("The run exported no targets.", "note")])
    table = Table(COLUMNS, [r.cells() for r in rows], ["l"] + ["r"] * 4 + ["l", "r", "r", "l"],
                  ["fail" if r.problem and not r.flash else "" for r in rows])
    notes = ("Flash: the file written to the device (for micro the model array; TFLite Micro's kernel code is "
             "not included). Download: the same file gzip'd (level 9); ÷ is the gain. RAM: the TFLite Micro "
             "tensor arena, measured by running the interpreter on a 64-bit host (a 32-bit MCU needs about the "
             "same or less); other runtimes record no peak memory. Latency: batch 1, on the machine and runtime "
             "named in 'timed on'.")
    return Section("Deployment", "deployment", [table, Paragraph(notes, "note")])


def smallest(rows: list[DeployRow]) -> tuple[list[str], int] | None:
    """The deployable target(s) with the smallest flash size (ties named together)."""
    sized = [(r.flash, r.target) for r in rows if r.deployable and not r.problem and r.flash]
    if not sized:
        return None
    low = min(b for b, _ in sized)
    return [n for b, n in sized if b == low], low


def fastest(rows: list[DeployRow]) -> tuple[list[str], float] | None:
    """The target(s) with the lowest p50 among those timed as they deploy (not host-emulated TFLite
    Micro, not an Edge TPU model timed on the CPU)."""
    timed = [(r.p50_ms, r.target) for r in rows if r.deployable and not r.host_emulated and _num(r.p50_ms)
             and not r.edgetpu]
    if not timed:
        return None
    low = min(t for t, _ in timed)
    return [n for t, n in timed if t == low], low


# -- one row -------------------------------------------------------------------------------
def _row(name: str, e: Mapping, v: Mapping, own: list[Mapping], arts: list[Mapping], root: Path) -> DeployRow:
    r = DeployRow(name, str(v.get("runtime") or e.get("runtime") or ""))
    if e.get("failed") and not v:
        r.deployable, r.problem = False, f"export failed ({_clip(str(e['failed']))})"
        return r
    path = v.get("path") or e.get("path")
    art = next((a for a in arts if a.get("path") == path), None) or {}
    r.flash = _int(v.get("bytes"), e.get("bytes"), e.get("model_bytes"), art.get("bytes"))
    r.gzip = _int(v.get("gzip_bytes"), art.get("gzip_bytes"))
    _measured(r, v)
    if e.get("arena_bytes") is not None or r.runtime == "tflite-micro":
        _micro(r, e, v)
    elif isinstance(e.get("edgetpu"), Mapping) or name == "edgetpu":
        _edgetpu(r, e, v, own, root)
    else:
        r.ram_note = f"peak memory is not recorded for {RUNTIME_NAMES.get(r.runtime, r.runtime or 'this runtime')}"
    if v.get("status") not in (None, "ok"):
        r.problem = f"validation {v.get('status')}"
    return r


def _measured(r: DeployRow, v: Mapping) -> None:
    if not v:
        r.timed_on = f"{NA}: not validated"
        return
    r.p50_ms, r.p90_ms = v.get("latency_p50_ms"), v.get("latency_p90_ms")
    r.accuracy, r.drop_pt, r.agreement_pct = v.get("accuracy"), v.get("accuracy_drop_pt"), v.get("agreement_pct")
    cpu = _map(v.get("cpu"))
    where = str(cpu.get("class") or cpu.get("model") or "this machine's CPU")
    threads = v.get("threads")
    th = f", {threads} thread{'s' if threads != 1 else ''}" if isinstance(threads, int) else ""
    r.timed_on = f"{RUNTIME_NAMES.get(r.runtime, r.runtime or 'runtime')} on {where}{th}"
    devices = _map(v.get("devices"))
    if devices:
        r.timed_on += f"; also on {len(devices)} device(s), see Validation"


def _micro(r: DeployRow, e: Mapping, v: Mapping) -> None:
    r.flash = _int(e.get("flash_bytes_estimate"), e.get("model_bytes"), r.flash)
    r.flash_note = "model array"
    r.ram = _int(v.get("arena_bytes"), e.get("arena_bytes"))
    r.ram_note = "TFLM arena" if r.ram is not None else "the tensor arena was not recorded"
    if r.timed_on and not r.timed_on.startswith(NA):
        r.host_emulated = True
        r.timed_on = r.timed_on.replace("TFLite Micro on", "TFLite Micro reference kernels, host-emulated on", 1) \
            + " (not MCU timing)"


def _edgetpu(r: DeployRow, e: Mapping, v: Mapping, own: list[Mapping], root: Path) -> None:
    a = {**_map(e.get("edgetpu")), **_analysis(own, root)}
    comp = _map(e.get("compiler"))
    compiled = next((x for x in own if str(x.get("path", "")).endswith("_edgetpu.tflite")), None)
    if compiled is not None:
        r.flash, r.gzip = _int(compiled.get("bytes")), _int(compiled.get("gzip_bytes"))
        r.flash_note = "compiled"
    else:
        why = "edgetpu_compiler was not on PATH" if comp.get("status") == "skipped" else "no compiled model recorded"
        size = f"; its int8 input is {r.flash:,} B" if r.flash else ""
        r.flash_note = f"not compiled ({why}){size}"
        r.flash = r.gzip = None
        r.deployable = False
    r.ram_note = "parameters live in the on-chip cache (see Edge TPU)" if a else "not recorded"
    if r.timed_on and not r.timed_on.startswith(NA):
        r.timed_on += " (the int8 model on the CPU, not the Edge TPU)"
    r.edgetpu = _edgetpu_text(a, comp)


def _edgetpu_text(a: Mapping, comp: Mapping) -> str:
    if not a:
        return f"{NA}: no Edge TPU analysis recorded"
    parts = []
    if _num(a.get("ops_mapped")) and _num(a.get("ops_total")):
        off = a["ops_total"] - a["ops_mapped"]
        parts.append(f"{a['ops_mapped']}/{a['ops_total']} ops on chip, {off} on CPU")
    if comp.get("status") == "ok" and _num(comp.get("ops_on_edgetpu")):
        parts.append(f"compiler: {comp['ops_on_edgetpu']} on chip, {comp.get('ops_on_cpu', 0)} on CPU")
    params, cache = a.get("parameter_bytes"), a.get("cache_bytes")
    if _num(params):
        of = f" of the {cache / 2**20:g} MiB cache" if _num(cache) and cache else " (on-chip cache)"
        fits = a.get("fits_cache")
        verdict = "fits" if fits is True else "does not fit: streamed from host memory" if fits is False else ""
        parts.append(f"parameters {fmt_bytes_kib(params)}{of}" + (f", {verdict}" if verdict else ""))
    return "; ".join(parts) or str(a.get("summary") or NA)


def _analysis(own: list[Mapping], root: Path) -> dict[str, Any]:
    """The Edge TPU ``analysis.json`` the export listed (cache size, op counts), or nothing."""
    for a in own:
        p = str(a.get("path", ""))
        if p.endswith("analysis.json"):
            try:
                data = json.loads((root / p).read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError):
                return {}
            keys = ("ops_total", "ops_mapped", "parameter_bytes", "cache_bytes", "fits_cache", "summary")
            return {k: data[k] for k in keys if isinstance(data, dict) and k in data}
    return {}


def _first_clause(text: str) -> str:
    """``not compiled (edgetpu_compiler ...); its int8 ...`` -> ``not compiled``."""
    return text.split(" (")[0].split(";")[0].strip()


def _int(*values: Any) -> int | None:
    return next((int(x) for x in values if _num(x) and not isinstance(x, bool)), None)


def _clip(text: str, n: int = 120) -> str:
    text = text.splitlines()[0] if text else text
    return text if len(text) <= n else text[: text.rfind(" ", 0, n)].rstrip(",;:") + " …"


def _map(v: Any) -> Mapping:
    return v if isinstance(v, Mapping) else {}


__all__ = ["COLUMNS", "DeployRow", "deployment_rows", "deployment_section", "fastest", "smallest"]
