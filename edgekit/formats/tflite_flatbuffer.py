"""Read a .tflite flatbuffer without running it: tensors, operators, dtypes, constants.

Uses the ``tflite`` flatbuffer schema bundled with ``ai_edge_litert`` (pure Python over the
``flatbuffers`` package), so reading never executes model code and a damaged file raises
InputError instead of crashing an interpreter.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import InputError

IDENTIFIER = b"TFL3"

DTYPES = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool",
    7: "int16", 8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64",
    13: "resource", 14: "variant", 15: "uint32", 16: "uint16", 17: "int4", 18: "bfloat16",
}


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    is_constant: bool
    is_variable: bool
    const_bytes: int
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]

    @property
    def dynamic(self) -> bool:
        """True when any dimension (other than a batch of 1) is unknown at compile time."""
        return any(d < 0 for d in self.shape_signature)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["scale"] = list(self.scale[:4]) + (["..."] if len(self.scale) > 4 else [])
        d["zero_point"] = list(self.zero_point[:4]) + (["..."] if len(self.zero_point) > 4 else [])
        return d


@dataclasses.dataclass(frozen=True)
class OpInfo:
    index: int
    op: str  # builtin operator name, e.g. CONV_2D, or CUSTOM:<code>
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class TFLiteGraph:
    """The main subgraph of a .tflite model."""

    tensors: tuple[TensorInfo, ...]
    ops: tuple[OpInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    num_subgraphs: int
    size: int

    def tensor(self, i: int) -> TensorInfo:
        return self.tensors[i]

    @property
    def input_tensors(self) -> list[TensorInfo]:
        return [self.tensors[i] for i in self.inputs]

    @property
    def output_tensors(self) -> list[TensorInfo]:
        return [self.tensors[i] for i in self.outputs]

    def op_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for op in self.ops:
            out[op.op] = out.get(op.op, 0) + 1
        return out

    def parameter_bytes(self) -> int:
        """Bytes of constant tensors (weights, biases, constant shapes)."""
        return sum(t.const_bytes for t in self.tensors if t.is_constant)

    def dtypes(self, constant: bool | None = None) -> set[str]:
        return {t.dtype for t in self.tensors if constant is None or t.is_constant == constant}


def _op_names() -> dict[int, str]:
    s = _schema()
    return {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


def builtin_code(name: str) -> int | None:
    """The BuiltinOperator number of the op called ``name`` (e.g. CONV_2D -> 3); None when unknown."""
    code = getattr(_schema().BuiltinOperator, name, None)
    return code if isinstance(code, int) else None


def _options(op) -> dict[str, Any]:
    o = op.builtinOptions
    if o is None:
        return {}
    out = {}
    for k, v in vars(o).items():
        if isinstance(v, (int, float, bool, str)):
            out[k] = v
        elif isinstance(v, (list, np.ndarray)) and len(v) <= 8:
            out[k] = [int(x) for x in v]
    return out


def read_tflite(data: bytes | str | Path, what: str = "model") -> TFLiteGraph:
    """Parse a .tflite flatbuffer (bytes or a path) into a :class:`TFLiteGraph`.

    Raises InputError when the bytes are not a TFLite flatbuffer or are damaged.
    """
    if isinstance(data, (str, Path)):
        p = Path(data)
        what = repr(str(p))
        if not p.is_file():
            raise InputError(f"TFLite file {what} does not exist.")
        data = p.read_bytes()
    data = bytes(data)
    if len(data) < 8 or data[4:8] != IDENTIFIER:
        raise InputError(
            f"{what} is not a TFLite flatbuffer (file identifier 'TFL3' missing). "
            "Pass a .tflite file written by the TFLite converter or `edgekit export`."
        )
    s = _schema()
    names = _op_names()
    try:
        model = s.ModelT.InitFromObj(s.Model.GetRootAs(data, 0))
        if not model.subgraphs:
            raise ValueError("no subgraphs")
        sg = model.subgraphs[0]
        buffers = model.buffers or []
        tensors = []
        for i, t in enumerate(sg.tensors or []):
            buf = buffers[t.buffer] if 0 < t.buffer < len(buffers) else None
            nbytes = 0
            if buf is not None:
                if buf.data is not None:
                    nbytes = len(buf.data)
                elif buf.size:
                    nbytes = int(buf.size)
            q = t.quantization
            shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
            sig = tuple(int(d) for d in t.shapeSignature) if t.shapeSignature is not None else shape
            tensors.append(TensorInfo(
                index=i,
                name=(t.name.decode() if isinstance(t.name, bytes) else (t.name or "")),
                dtype=DTYPES.get(t.type, f"type{t.type}"),
                shape=shape,
                shape_signature=sig,
                is_constant=nbytes > 0,
                is_variable=bool(t.isVariable),
                const_bytes=nbytes,
                scale=tuple(float(v) for v in (q.scale if q is not None and q.scale is not None else ())),
                zero_point=tuple(int(v) for v in (q.zeroPoint if q is not None and q.zeroPoint is not None else ())),
            ))
        ops = []
        codes = model.operatorCodes or []
        for i, op in enumerate(sg.operators or []):
            code = codes[op.opcodeIndex]
            builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
            name = names.get(builtin, f"BUILTIN_{builtin}")
            if name == "CUSTOM":
                cc = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
                name = f"CUSTOM:{cc}"
            ops.append(OpInfo(
                index=i, op=name, version=int(code.version or 1),
                inputs=tuple(int(v) for v in (op.inputs if op.inputs is not None else ())),
                outputs=tuple(int(v) for v in (op.outputs if op.outputs is not None else ())),
                options=_options(op),
            ))
        n = len(tensors)
        for op in ops:
            for t in op.inputs + op.outputs:
                if t >= n:
                    raise ValueError(f"operator {op.index} refers to tensor {t} of {n}")
        graph = TFLiteGraph(
            tensors=tuple(tensors), ops=tuple(ops),
            inputs=tuple(int(v) for v in (sg.inputs if sg.inputs is not None else ())),
            outputs=tuple(int(v) for v in (sg.outputs if sg.outputs is not None else ())),
            num_subgraphs=len(model.subgraphs), size=len(data),
        )
        if not graph.inputs or not graph.outputs or max(graph.inputs + graph.outputs) >= n:
            raise ValueError("graph inputs/outputs are missing or out of range")
        return graph
    except InputError:
        raise
    except Exception as e:  # damaged flatbuffer: offsets out of range, bad unions ...
        detail = str(e).split("(")[0].strip()[:100] or type(e).__name__
        raise InputError(f"{what} is a damaged TFLite flatbuffer: truncated or corrupt ({detail}).") from None


def with_signature(data: bytes, key: str = "serving_default") -> bytes:
    """``data`` with a signature ``key`` over subgraph 0's inputs and outputs added when the
    flatbuffer has no signature at all (a concrete function converted without a trackable, e.g.
    from ONNX); unchanged otherwise. Tools that feed a model by signature (ai-edge-quantizer's
    calibration) need one."""
    import flatbuffers

    s = _schema()
    root = s.Model.GetRootAs(bytes(data), 0)
    if root.SignatureDefsLength():  # the common case: nothing to unpack or rebuild
        return bytes(data)
    model = s.ModelT.InitFromObj(root)
    sg = model.subgraphs[0]

    def tensor_map(i: int):
        t = s.TensorMapT()
        t.name, t.tensorIndex = sg.tensors[i].name, int(i)
        return t

    sig = s.SignatureDefT()
    sig.signatureKey, sig.subgraphIndex = key.encode(), 0
    sig.inputs = [tensor_map(i) for i in sg.inputs]
    sig.outputs = [tensor_map(i) for i in sg.outputs]
    model.signatureDefs = [sig]
    b = flatbuffers.Builder(len(data) + 1024)
    b.Finish(model.Pack(b), file_identifier=IDENTIFIER)
    return bytes(b.Output())
