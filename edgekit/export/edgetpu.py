"""The ``edgetpu`` target: a full-int8 flatbuffer plus an Edge TPU compatibility analysis.

The analysis works without the compiler, from the .tflite flatbuffer itself, against the
requirements in Coral's "TensorFlow models on the Edge TPU" documentation:

- every tensor is 8-bit quantized (int8/uint8; int32 only for constant biases and shapes),
- tensor sizes are constant at compile time (no dynamic dimensions),
- model parameters (weights, biases) are compile-time constants,
- tensors are 1-, 2- or 3-D; a higher-rank tensor may be > 1 only in its 3 innermost dims,
- only the supported operations are used, with their documented limitations,
- a single subgraph.

The compiler cuts the graph at the first op it cannot map: that op and every op after it
run on the CPU. Parameters beyond the ~8 MiB on-chip cache are streamed from the host.
Where ``edgetpu_compiler`` is on PATH it is run as well and its verdict is parsed.
"""
from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

from edgekit.artifacts import write_bytes, write_json, write_text
from edgekit.errors import EdgekitError, ValidationError
from edgekit.export.base import ExportContext, ExportedFile, TargetOutput, target
from edgekit.export.edgetpu_ops import COMPILER_VERSION, version_issue
from edgekit.formats.tflite_flatbuffer import OpInfo, TFLiteGraph, read_tflite
from edgekit.vocab import EDGETPU, LITERT

CACHE_BYTES = 8 * 1024 * 1024  # Edge TPU on-chip parameter cache (about 8 MiB)
EIGHT_BIT = {"int8", "uint8"}
DOCS = "https://coral.ai/docs/edgetpu/models-intro/#supported-operations"

Check = Callable[[OpInfo, TFLiteGraph], "str | None"]


def _no_fused_activation(op: OpInfo, g: TFLiteGraph) -> str | None:
    if op.options.get("fusedActivationFunction", 0) != 0:
        return "no fused activation function is supported"
    return None


def _one_dimensional(t_shape: tuple[int, ...]) -> bool:
    return sum(1 for d in t_shape if d != 1) <= 1


def _fully_connected(op: OpInfo, g: TFLiteGraph) -> str | None:
    if op.options.get("weightsFormat", 0) != 0:
        return "only the default weights format is supported"
    if not _one_dimensional(g.tensor(op.outputs[0]).shape):
        return f"output must be one-dimensional, got shape {list(g.tensor(op.outputs[0]).shape)}"
    return None


def _softmax(op: OpInfo, g: TFLiteGraph) -> str | None:
    shape = g.tensor(op.inputs[0]).shape
    n = 1
    for d in shape:
        n *= max(d, 1)
    if not _one_dimensional(shape):
        return f"only a 1-D input is supported, got shape {list(shape)}"
    if n > 16000:
        return f"at most 16,000 elements are supported, got {n}"
    return None


def _concatenation(op: OpInfo, g: TFLiteGraph) -> str | None:
    msg = _no_fused_activation(op, g)
    if msg:
        return msg
    consts = [i for i in op.inputs if g.tensor(i).is_constant]
    if consts and len(op.inputs) != 2:
        return "with a constant input only 2 inputs (zero padding) are supported"
    return None


def _three_d(op: OpInfo, g: TFLiteGraph) -> str | None:
    shape = g.tensor(op.inputs[0]).shape
    if len(shape) > 4 or (len(shape) == 4 and shape[0] != 1):
        return f"input/output must be 3-dimensional, got shape {list(shape)}"
    return None


# Coral's supported-operations table (compiler 16): TFLite builtin -> limitation check.
# MEAN/PAD/SUM may only touch the x/y axes: their axes live in constant buffers and are
# left to the compiler.
SUPPORTED: dict[str, Check | None] = {
    "ADD": None, "AVERAGE_POOL_2D": _no_fused_activation, "CONCATENATION": _concatenation,
    "CONV_2D": None, "DEPTHWISE_CONV_2D": None, "EXPAND_DIMS": None, "FULLY_CONNECTED": _fully_connected,
    "L2_NORMALIZATION": None, "LOGISTIC": None, "UNIDIRECTIONAL_SEQUENCE_LSTM": None, "MAXIMUM": None,
    "MAX_POOL_2D": _no_fused_activation, "MEAN": None, "MINIMUM": None, "MUL": None, "PACK": None,
    "PAD": None, "PRELU": None, "QUANTIZE": None, "REDUCE_MAX": None, "REDUCE_MIN": None, "RELU": None,
    "RELU6": None, "RELU_N1_TO_1": None, "RESHAPE": None, "RESIZE_BILINEAR": _three_d,
    "RESIZE_NEAREST_NEIGHBOR": _three_d, "RSQRT": None, "SLICE": None, "SOFTMAX": _softmax,
    "SPACE_TO_DEPTH": None, "SPLIT": None, "SQUEEZE": None, "STRIDED_SLICE": None, "SUB": None,
    "SUM": None, "SQUARED_DIFFERENCE": None, "TANH": None, "TRANSPOSE": None, "TRANSPOSE_CONV": None,
}
# (the rank rule applies to activations: conv filters are 4-D constants)
# inputs that hold parameters (must be compile-time constants)
PARAM_INPUTS = {"CONV_2D": (1, 2), "DEPTHWISE_CONV_2D": (1, 2), "FULLY_CONNECTED": (1, 2), "TRANSPOSE_CONV": (1,)}


@dataclasses.dataclass(frozen=True)
class OpVerdict:
    index: int
    op: str
    input_dtypes: tuple[str, ...]
    output_dtypes: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    output_shapes: tuple[tuple[int, ...], ...]
    supported: bool  # the op itself passes every requirement
    mapped: bool  # it runs on the Edge TPU (supported and before the partition point)
    reason: str  # why not, or "mapped to Edge TPU"
    version: int = 1  # the builtin operator version in the flatbuffer

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["input_shapes"] = [list(s) for s in self.input_shapes]
        d["output_shapes"] = [list(s) for s in self.output_shapes]
        return d


@dataclasses.dataclass(frozen=True)
class EdgeTPUAnalysis:
    ops: tuple[OpVerdict, ...]
    model_issues: tuple[str, ...]  # requirements the whole model fails (e.g. several subgraphs)
    partition_index: int | None  # first op that leaves the TPU, None when fully mapped
    parameter_bytes: int
    cache_bytes: int = CACHE_BYTES

    @property
    def mapped_ops(self) -> int:
        return sum(v.mapped for v in self.ops)

    @property
    def cpu_ops(self) -> int:
        return len(self.ops) - self.mapped_ops

    @property
    def fully_mapped(self) -> bool:
        return self.partition_index is None and not self.model_issues

    @property
    def fits_cache(self) -> bool:
        return self.parameter_bytes <= self.cache_bytes

    def partition(self) -> dict[str, Any] | None:
        if self.partition_index is None:
            return None
        v = self.ops[self.partition_index]
        return {"index": v.index, "op": v.op, "reason": v.reason,
                "ops_on_cpu": [o.op for o in self.ops[self.partition_index:]]}

    def summary(self) -> str:
        if self.model_issues:
            return f"not compilable for the Edge TPU: {'; '.join(self.model_issues)}"
        if self.fully_mapped:
            conv = len(self.ops) - self.mapped_ops
            extra = f" (+ {conv} float input/output conversion op(s) on the CPU)" if conv else ""
            return f"all {self.mapped_ops} compute ops map to the Edge TPU{extra}"
        p = self.partition()
        return (f"{self.mapped_ops} of {len(self.ops)} ops map to the Edge TPU; the graph is cut at op "
                f"#{p['index']} {p['op']} ({p['reason']}): it and the {len(self.ops) - p['index'] - 1} ops "
                "after it run on the CPU")

    def to_dict(self) -> dict[str, Any]:
        return {
            "fully_mapped": self.fully_mapped, "summary": self.summary(), "ops_total": len(self.ops),
            "ops_mapped": self.mapped_ops, "ops_on_cpu": self.cpu_ops, "partition": self.partition(),
            "model_issues": list(self.model_issues), "parameter_bytes": self.parameter_bytes,
            "cache_bytes": self.cache_bytes, "fits_cache": self.fits_cache,
            "ops": [v.to_dict() for v in self.ops], "reference": DOCS,
        }

    def to_markdown(self) -> str:
        mib = self.parameter_bytes / 2**20
        lines = [
            "# Edge TPU compatibility", "", f"**{self.summary()}.**", "",
            f"Parameter memory: {self.parameter_bytes:,} bytes ({mib:.2f} MiB) of the "
            f"{self.cache_bytes / 2**20:.0f} MiB on-chip cache: "
            + ("fits." if self.fits_cache else "does not fit; the rest is streamed from host memory on every inference."),
            "", "| # | op | version | input dtypes | output dtypes | output shape | Edge TPU | why |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for v in self.ops:
            where = "yes" if v.mapped else "no (CPU)"
            lines.append(f"| {v.index} | {v.op} | {v.version} | {', '.join(v.input_dtypes)} | "
                         f"{', '.join(v.output_dtypes)} | "
                         f"{'x'.join(str(d) for d in v.output_shapes[0]) if v.output_shapes else ''} | {where} | {v.reason} |")
        if self.model_issues:
            lines += ["", "Model-level issues:", *[f"- {m}" for m in self.model_issues]]
        lines += ["", f"Requirements: {DOCS}", ""]
        return "\n".join(lines)


def _op_issue(op: OpInfo, g: TFLiteGraph) -> str | None:
    """Why ``op`` cannot run on the Edge TPU, or None."""
    if op.op not in SUPPORTED:
        return "operation not supported by the Edge TPU"
    for i in PARAM_INPUTS.get(op.op, ()):
        if i < len(op.inputs) and op.inputs[i] >= 0 and not g.tensor(op.inputs[i]).is_constant:
            return "parameters (weights/bias) are not compile-time constants"
    tensors = [g.tensor(i) for i in (*op.inputs, *op.outputs) if i >= 0]
    for t in tensors:
        if t.dynamic:
            return f"tensor {t.name!r} has a dynamic shape {list(t.shape_signature)}; sizes must be constant"
        if not t.is_constant and len(t.shape) > 3 and any(d > 1 for d in t.shape[:-3]):
            return f"tensor {t.name!r} of shape {list(t.shape)}: only the 3 innermost dims may be > 1"
        if t.is_constant and t.dtype == "int32":
            continue  # biases and constant shapes/axes
        if t.dtype not in EIGHT_BIT:
            kind = "constant" if t.is_constant else "activation"
            return f"{kind} tensor {t.name!r} is {t.dtype}; only 8-bit quantized tensors are supported"
    check = SUPPORTED[op.op]
    return check(op, g) if check else None


def _io_conversions(g: TFLiteGraph) -> dict[int, str]:
    """Ops that only convert float model inputs/outputs to/from 8 bits.

    The compiler leaves a leading QUANTIZE of a float input and a trailing DEQUANTIZE to a float
    output on the CPU without cutting the graph between them (its log marks them as not mapped
    while the ops in between map)."""
    out: dict[int, str] = {}
    for op in g.ops:
        if not op.inputs or not op.outputs:
            continue
        src = g.tensor(op.inputs[0])
        if op.op == "QUANTIZE" and op.inputs[0] in g.inputs and src.dtype.startswith("float"):
            out[op.index] = "float input quantized on the CPU before the Edge TPU segment"
        elif op.op == "DEQUANTIZE" and op.outputs[0] in g.outputs and src.dtype in EIGHT_BIT:
            out[op.index] = "output dequantized to float on the CPU after the Edge TPU segment"
    return out


def analyze_edgetpu(model: bytes | str | Path) -> EdgeTPUAnalysis:
    """Edge TPU compatibility of a .tflite model (bytes or path), from its flatbuffer.

    An operator version newer than edgetpu_compiler 16 parses (:mod:`edgekit.export.edgetpu_ops`)
    is the partition point and a model issue: the compiler refuses the whole model for it, so
    no op maps."""
    g = read_tflite(model)
    issues = []
    if g.num_subgraphs > 1:
        issues.append(f"{g.num_subgraphs} subgraphs; more than one subgraph is not supported")
    too_new = {op.index: why for op in g.ops if (why := version_issue(op.op, op.version))}
    if too_new:
        first = min(too_new)
        issues.append(f"edgetpu_compiler {COMPILER_VERSION} refuses the model: op #{first} {too_new[first]}"
                      + (f" (and {len(too_new) - 1} more op(s))" if len(too_new) > 1 else ""))
    verdicts, partition = [], min(too_new) if too_new else None
    boundary = _io_conversions(g)
    for op in g.ops:
        why = too_new.get(op.index) or _op_issue(op, g)
        if op.index in boundary and op.index not in too_new:  # float I/O conversion: CPU work, not a cut
            why, mapped, reason = boundary[op.index], False, boundary[op.index]
        else:
            if why is not None and partition is None:
                partition = op.index
            mapped = why is None and partition is None
            if why is None and too_new:
                reason = f"supported, but the compiler refuses the model (op #{partition})"
            else:
                reason = why or ("mapped to Edge TPU" if mapped
                                 else "supported, but after the partition point (runs on CPU)")
        ins = [g.tensor(i) for i in op.inputs if i >= 0]
        outs = [g.tensor(i) for i in op.outputs if i >= 0]
        verdicts.append(OpVerdict(
            op.index, op.op, tuple(t.dtype for t in ins), tuple(t.dtype for t in outs),
            tuple(t.shape for t in ins), tuple(t.shape for t in outs), why is None, mapped, reason,
            op.version,
        ))
    return EdgeTPUAnalysis(tuple(verdicts), tuple(issues), partition, g.parameter_bytes())


# --------------------------------------------------------------------------- compiler

def compiler_path() -> str | None:
    return shutil.which("edgetpu_compiler")


def run_compiler(tflite: Path, out_dir: Path, timeout_s: int = 180) -> dict[str, Any]:
    """Run ``edgetpu_compiler`` on ``tflite``; returns its log and op counts.

    Raises RuntimeError with the compiler's last line when it fails or times out.
    """
    exe = compiler_path()
    if exe is None:
        raise RuntimeError("edgetpu_compiler is not on PATH")
    cmd = [exe, "--show_operations", "--out_dir", str(out_dir), str(tflite)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"edgetpu_compiler timed out after {timeout_s}s") from None
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        last = (log.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"edgetpu_compiler exited with {proc.returncode}: {last}")
    return {"command": cmd, "log": log, **parse_compiler_log(log)}


def parse_compiler_log(log: str) -> dict[str, Any]:
    """Mapped/CPU op counts from an edgetpu_compiler log."""
    def num(pattern: str) -> int | None:
        m = re.search(pattern, log)
        return int(m.group(1)) if m else None

    return {
        "ops_on_edgetpu": num(r"Number of operations that will run on Edge TPU:\s*(\d+)"),
        "ops_on_cpu": num(r"Number of operations that will run on CPU:\s*(\d+)"),
        "version": (re.search(r"Edge TPU Compiler version\s*(\S+)", log) or [None, None])[1],
    }


@target(EDGETPU, description="Full-int8 TFLite for the Coral Edge TPU + op-by-op compatibility analysis",
        needs="calibration images; edgetpu_compiler on PATH to compile (analysis works without it)",
        runtime=LITERT, exact=False, quantized=True,
        files=("edgetpu/model_int8.tflite", "edgetpu/analysis.json", "edgetpu/analysis.md"))
def build_edgetpu(ctx: ExportContext, stage: Path, spec) -> TargetOutput:
    from edgekit.export.tflite import tflite_bytes

    data = tflite_bytes(ctx, "int8", batch_size=1)  # the compiler needs static shapes
    rel = "edgetpu/model_int8.tflite"
    write_bytes(stage / rel, data)
    analysis = analyze_edgetpu(data)
    ctx.progress(f"edgetpu: {analysis.summary()}")
    info: dict[str, Any] = {"analysis": analysis.to_dict()}
    files = [ExportedFile(rel, "tflite"), ExportedFile("edgetpu/analysis.json", "json"),
             ExportedFile("edgetpu/analysis.md", "markdown")]
    if ctx.config.require_full_mapping and not analysis.fully_mapped:
        detail = analysis.summary()
        raise ValidationError("edgetpu", "ops_on_cpu", analysis.cpu_ops, 0, detail + "; --require-full-mapping is set")
    if compiler_path():
        ctx.progress("edgetpu: running edgetpu_compiler")
        try:
            comp = run_compiler(stage / rel, stage / "edgetpu", ctx.config.edgetpu_timeout_s)
        except RuntimeError as e:  # checked exit: a compiler that fails fails the target
            raise EdgekitError(f"edgetpu: {e}. The analysis says: {analysis.summary()}.") from None
        else:
            write_text(stage / "edgetpu/compiler.txt", comp["log"])
            files.append(ExportedFile("edgetpu/compiler.txt", "log"))
            for f in ("model_int8_edgetpu.tflite", "model_int8_edgetpu.log"):
                if (stage / "edgetpu" / f).is_file():
                    files.append(ExportedFile(f"edgetpu/{f}", "tflite" if f.endswith(".tflite") else "log"))
            info["compiler"] = {"status": "ok", **{k: v for k, v in comp.items() if k != "log"}}
            if ctx.config.require_full_mapping and comp.get("ops_on_cpu"):
                raise ValidationError("edgetpu", "ops_on_cpu", comp["ops_on_cpu"], 0, "reported by edgetpu_compiler")
    else:
        info["compiler"] = {"status": "skipped", "reason": "edgetpu_compiler is not on PATH (install it from "
                            "Coral's apt repository to compile); the analysis above is from the flatbuffer"}
    write_json(stage / "edgetpu/analysis.json", {**analysis.to_dict(), "compiler": info["compiler"]})
    write_text(stage / "edgetpu/analysis.md", analysis.to_markdown())
    return TargetOutput(EDGETPU, files, rel, spec.runtime, info)
