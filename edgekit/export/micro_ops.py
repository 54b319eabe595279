"""The TFLite Micro op resolver for one model: ``model_ops.h``.

A ``tflite::MicroMutableOpResolver<N>`` sized to the model's distinct builtin ops (N) and
registering exactly those, read from the .tflite flatbuffer (every subgraph, so the bodies of
IF/WHILE count too). :data:`OP_METHODS` maps TFLite builtin op names to the ``AddXxx()``
methods of TFLite Micro's ``micro_mutable_op_resolver.h``; an op with no method there (a custom
op, or a builtin TFLite Micro does not implement) is an InputError naming it.
"""
from __future__ import annotations

from edgekit.errors import InputError

# TFLite builtin op -> MicroMutableOpResolver method (tensorflow/lite/micro/micro_mutable_op_resolver.h)
OP_METHODS: dict[str, str] = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax", "ARG_MIN": "AddArgMin",
    "ASSIGN_VARIABLE": "AddAssignVariable", "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_MATMUL": "AddBatchMatMul", "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
    "BROADCAST_ARGS": "AddBroadcastArgs", "BROADCAST_TO": "AddBroadcastTo", "CALL_ONCE": "AddCallOnce",
    "CAST": "AddCast", "CEIL": "AddCeil", "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D",
    "COS": "AddCos", "CUMSUM": "AddCumSum", "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "DEQUANTIZE": "AddDequantize", "DIV": "AddDiv",
    "DYNAMIC_UPDATE_SLICE": "AddDynamicUpdateSlice", "ELU": "AddElu", "EMBEDDING_LOOKUP": "AddEmbeddingLookup",
    "EQUAL": "AddEqual", "EXP": "AddExp", "EXPAND_DIMS": "AddExpandDims", "FILL": "AddFill", "FLOOR": "AddFloor",
    "FLOOR_DIV": "AddFloorDiv", "FLOOR_MOD": "AddFloorMod", "FULLY_CONNECTED": "AddFullyConnected",
    "GATHER": "AddGather", "GATHER_ND": "AddGatherNd", "GREATER": "AddGreater", "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish", "IF": "AddIf", "L2_NORMALIZATION": "AddL2Normalization",
    "L2_POOL_2D": "AddL2Pool2D", "LEAKY_RELU": "AddLeakyRelu", "LESS": "AddLess", "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog", "LOG_SOFTMAX": "AddLogSoftmax", "LOGICAL_AND": "AddLogicalAnd",
    "LOGICAL_NOT": "AddLogicalNot", "LOGICAL_OR": "AddLogicalOr", "LOGISTIC": "AddLogistic",
    "MAX_POOL_2D": "AddMaxPool2D", "MAXIMUM": "AddMaximum", "MEAN": "AddMean", "MINIMUM": "AddMinimum",
    "MIRROR_PAD": "AddMirrorPad", "MUL": "AddMul", "NEG": "AddNeg", "NOT_EQUAL": "AddNotEqual", "PACK": "AddPack",
    "PAD": "AddPad", "PADV2": "AddPadV2", "PRELU": "AddPrelu", "QUANTIZE": "AddQuantize",
    "READ_VARIABLE": "AddReadVariable", "REDUCE_MAX": "AddReduceMax", "REDUCE_MIN": "AddReduceMin", "RELU": "AddRelu", "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape", "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor", "REVERSE_V2": "AddReverseV2", "ROUND": "AddRound",
    "RSQRT": "AddRsqrt", "SELECT_V2": "AddSelectV2", "SHAPE": "AddShape", "SIN": "AddSin", "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax", "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit", "SPLIT_V": "AddSplitV", "SQRT": "AddSqrt", "SQUARE": "AddSquare",
    "SQUARED_DIFFERENCE": "AddSquaredDifference", "SQUEEZE": "AddSqueeze", "STRIDED_SLICE": "AddStridedSlice",
    "SUB": "AddSub", "SUM": "AddSum", "SVDF": "AddSvdf", "TANH": "AddTanh", "TRANSPOSE": "AddTranspose",
    "TRANSPOSE_CONV": "AddTransposeConv", "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "UNPACK": "AddUnpack", "VAR_HANDLE": "AddVarHandle", "WHILE": "AddWhile", "ZEROS_LIKE": "AddZerosLike",
}


def model_ops(model: bytes) -> list[str]:
    """The distinct op names of every subgraph of the .tflite ``model``, sorted (a custom op as
    ``CUSTOM:<code>``); InputError when the flatbuffer is damaged."""
    from edgekit.formats.tflite_flatbuffer import read_tflite

    g = read_tflite(model)  # checks the identifier and subgraph 0
    names = {op.op for op in g.ops}
    if g.num_subgraphs > 1:
        names |= _other_subgraph_ops(model)
    return sorted(names)


def _other_subgraph_ops(model: bytes) -> set[str]:
    from ai_edge_litert import schema_py_generated as s

    builtin = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}
    m = s.Model.GetRootAs(model, 0)
    out = set()
    for i in range(1, m.SubgraphsLength()):
        sg = m.Subgraphs(i)
        for j in range(sg.OperatorsLength()):
            code = m.OperatorCodes(sg.Operators(j).OpcodeIndex())
            name = builtin.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), f"BUILTIN_{code.BuiltinCode()}")
            if name == "CUSTOM":
                name = f"CUSTOM:{(code.CustomCode() or b'').decode(errors='replace')}"
            out.add(name)
    return out


def resolver_methods(ops: list[str]) -> list[str]:
    """The ``MicroMutableOpResolver`` method of each op, in ``ops``' order; InputError naming the
    ops TFLite Micro has no builtin registration for."""
    missing = [op for op in ops if op not in OP_METHODS]
    if missing:
        raise InputError(
            f"The micro target cannot build a TFLite Micro op resolver: no MicroMutableOpResolver method for "
            f"op {', '.join(missing)}. Replace the layer with one TFLite Micro supports, or export another target.")
    return [OP_METHODS[op] for op in ops]


def ops_header(ops: list[str], guard: str = "EDGEKIT_MODEL_OPS_H_") -> str:
    """``model_ops.h``: ``edgekit::OpResolver`` (a MicroMutableOpResolver<N>, N = len(ops)) and
    ``edgekit::RegisterOps(resolver)`` adding exactly ``ops``."""
    methods = resolver_methods(ops)
    adds = "\n".join(f"  if (resolver.{m}() != kTfLiteOk) return kTfLiteError;  // {op}"
                     for op, m in zip(ops, methods))
    return f"""// Generated by edgekit: the TFLite Micro op resolver for this model's {len(ops)} builtin ops.
#ifndef {guard}
#define {guard}

#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

// Distinct ops of the model's .tflite flatbuffer: {", ".join(ops)}.
#define EDGEKIT_NUM_OPS {len(ops)}

namespace edgekit {{

// Room for exactly the model's ops: no unused kernels linked into the firmware.
using OpResolver = tflite::MicroMutableOpResolver<EDGEKIT_NUM_OPS>;

// Adds the model's ops to `resolver`; kTfLiteError when one cannot be added.
inline TfLiteStatus RegisterOps(OpResolver& resolver) {{
{adds}
  return kTfLiteOk;
}}

}}  // namespace edgekit

#endif  // {guard}
"""
