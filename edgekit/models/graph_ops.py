"""The TensorFlow ops edgekit runs from an untrusted SavedModel: an allow-list, checked on every
node of the top-level graph and of every function in ``graph_def.library`` before any of it runs.

Why every function and not only the chosen signature: ``tf.saved_model.load`` runs more than the
signature. It calls the ``_initialize`` function of each saved resource and the restore
functions of saveable objects while it loads; a TF1-style SavedModel has its init ops and its
saver in the top-level graph. A graph that writes a file from any of these writes it on load,
before edgekit calls anything, and the child-process probe would write it too.

How the list was made: by reading the op types of legitimate SavedModels: ``model.export()`` and
``tf.saved_model.save`` of every edgekit zoo model (tf_keras), Keras 3 ``model.export()`` of a
small conv net, of ``keras.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3))`` and
``EfficientNetB0(input_shape=(32, 32, 3))``, and ``tf.saved_model.save`` of a ``tf.Module`` with a
``tf.function``. Outside the saver they use 39 op types (conv, matmul, pooling, batch norm,
activations, reshapes, ``PartitionedCall`` ...); to those we add the other pure tensor ops that
image models are commonly made of (more activations, resizes, concat/split/gather, control flow
whose branches are library functions and therefore checked too, fake-quant ops of QAT models).
None of them touches files, the network, Python or the process; variable ops act on the model's
own resource variables.

The saver: each TF2 SavedModel also holds ``__inference__traced_save_*`` and
``__inference__traced_restore_*``, called from the top-level nodes named by ``saver_def`` with
the ``saver_filename`` placeholder that a loader feeds with its own checkpoint path. They are the
only places with file ops (``SaveV2``, ``RestoreV2``, ``MergeV2Checkpoints``) and the file-name
ops that build their paths (``StringJoin``, ``ShardedFilename``, ``StaticRegexFullMatch``), and
``DisableCopyOnRead``. TF2's ``tf.saved_model.load`` does not run them (it builds its own restore
ops in Python); the TF1 loader runs ``saver_def.restore_op_name`` with the path it feeds. So these
ops are allowed only (a) in functions that only the ``saver_def`` nodes call, with the filename
placeholder as their first input, and that no object of the SavedModel exposes, or (b) in the
part of the top-level graph that the ``saver_def`` nodes depend on (a TF1 saver); and a file op
there must take its path from that placeholder or argument, extended only by string constants
without ``..``. The same ops anywhere else (e.g. a ``RestoreV2`` with a constant path in a
signature) are refused.

Everything else is refused by name: file writes and reads (``WriteFile``, ``ReadFile``,
``DatasetToTFRecord``), Python callbacks (``PyFunc``, ``EagerPyFunc``), ``tf.data`` ops, printing
(``PrintV2``, which can print to a file), summaries, lookup tables and their file initializers,
and calls of functions the SavedModel does not define.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

_GRAPH = {"Const", "Placeholder", "PlaceholderWithDefault", "Identity", "IdentityN", "NoOp", "StopGradient",
          "PreventGradient", "CheckNumerics", "EnsureShape", "Assert", "PartitionedCall", "StatefulPartitionedCall",
          "If", "StatelessIf", "While", "StatelessWhile", "Case", "StatelessCase"}
_VARIABLES = {"VarHandleOp", "ReadVariableOp", "AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp",
              "VarIsInitializedOp", "ResourceGather", "VariableV2", "Assign", "IsVariableInitialized"}
_MATH = {"Add", "AddV2", "AddN", "Sub", "Mul", "MulNoNan", "Div", "DivNoNan", "RealDiv", "FloorDiv", "FloorMod",
         "Maximum", "Minimum", "Neg", "Abs", "Square", "SquaredDifference", "Sqrt", "Rsqrt", "Reciprocal", "Exp",
         "Log", "Log1p", "Pow", "Sign", "Floor", "Ceil", "Round", "Erf", "Tanh", "Sigmoid", "Cast", "Equal",
         "NotEqual", "Less", "LessEqual", "Greater", "GreaterEqual", "LogicalAnd", "LogicalOr", "LogicalNot",
         "Select", "SelectV2", "ClipByValue", "Mean", "Sum", "Max", "Min", "Prod", "ArgMax", "ArgMin", "All", "Any",
         "MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum", "Cumsum", "Range", "Sin", "Cos"}
_NN = {"Conv2D", "Conv3D", "DepthwiseConv2dNative", "Conv2DBackpropInput", "Conv3DBackpropInputV2", "BiasAdd",
       "Relu", "Relu6", "Elu", "Selu", "LeakyRelu", "Softplus", "Softsign", "Softmax", "LogSoftmax", "MaxPool",
       "MaxPoolV2", "AvgPool", "MaxPool3D", "AvgPool3D", "FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3",
       "LRN", "ResizeBilinear", "ResizeNearestNeighbor", "ResizeBicubic", "TopKV2"}
_ARRAY = {"Reshape", "Shape", "ShapeN", "Size", "Rank", "Squeeze", "ExpandDims", "Transpose", "ConcatV2", "Concat",
          "Pack", "Unpack", "Split", "SplitV", "Slice", "StridedSlice", "Tile", "Pad", "PadV2", "MirrorPad", "Fill",
          "ZerosLike", "OnesLike", "Gather", "GatherV2", "GatherNd", "BroadcastTo", "BroadcastArgs", "Where",
          "ReverseV2", "OneHot", "SpaceToDepth", "DepthToSpace", "SpaceToBatchND", "BatchToSpaceND"}
_QUANT = {"FakeQuantWithMinMaxVars", "FakeQuantWithMinMaxVarsPerChannel", "FakeQuantWithMinMaxArgs",
          "QuantizeAndDequantizeV2", "QuantizeAndDequantizeV3", "QuantizeAndDequantizeV4"}
ALLOWED_OPS = frozenset(_GRAPH | _VARIABLES | _MATH | _NN | _ARRAY | _QUANT)
SAVER_FILE_OPS = {"SaveV2": (0,), "RestoreV2": (0,), "MergeV2Checkpoints": (0, 1)}  # op -> its path inputs
SAVER_ONLY_OPS = frozenset({*SAVER_FILE_OPS, "StringJoin", "ShardedFilename", "StaticRegexFullMatch",
                            "DisableCopyOnRead"})
_MAX_DEPTH = 32


def _name(ref: str) -> str:
    """The node (or function argument) an input reference like ``^n``, ``n:1``, ``n:out:0`` names."""
    return ref.lstrip("^").split(":")[0]


def _data_inputs(node: Any) -> list[str]:
    return [i for i in node.input if not i.startswith("^")]


def called_functions(node: Any) -> set[str]:
    """Names of the functions a node calls: its op (a library function) or its function attributes."""
    names = {node.op}
    for a in node.attr.values():
        if a.HasField("func"):
            names.add(a.func.name)
        names.update(f.name for f in a.list.func)
    return names


def _is_suffix(nodes: dict[str, Any], ref: str, depth: int = 0) -> bool:
    """A string constant without ``..`` (or a Select/Identity of such): a path suffix."""
    node = nodes.get(_name(ref))
    if node is None or depth > _MAX_DEPTH:
        return False
    if node.op == "Const":
        return not any(b".." in s for s in node.attr["value"].tensor.string_val)
    ins = _data_inputs(node)
    if node.op == "Identity":
        return _is_suffix(nodes, ins[0], depth + 1)
    if node.op in ("Select", "SelectV2"):
        return all(_is_suffix(nodes, i, depth + 1) for i in ins[1:])
    return False


def _is_rooted(nodes: dict[str, Any], ref: str, roots: set[str], depth: int = 0) -> bool:
    """Whether the path ``ref`` is a root (the loader's file name), extended only by suffixes."""
    if _name(ref) in roots:
        return True
    node = nodes.get(_name(ref))
    if node is None or depth > _MAX_DEPTH:
        return False
    ins = _data_inputs(node)
    if node.op in ("Identity", "ShardedFilename"):
        return _is_rooted(nodes, ins[0], roots, depth + 1)
    if node.op == "StringJoin":
        return (b".." not in node.attr["separator"].s and _is_rooted(nodes, ins[0], roots, depth + 1)
                and all(_is_suffix(nodes, i, depth + 1) for i in ins[1:]))
    if node.op in ("Pack", "Select", "SelectV2"):
        values = ins if node.op == "Pack" else ins[1:]
        return bool(values) and all(_is_rooted(nodes, i, roots, depth + 1) for i in values)
    return False


def _saver_allows(node: Any, nodes: dict[str, Any], roots: set[str]) -> bool:
    """Whether a saver-only op is acceptable where the loader's own path is ``roots``."""
    if node.op not in SAVER_ONLY_OPS:
        return False
    ins = _data_inputs(node)
    return all(i < len(ins) and _is_rooted(nodes, ins[i], roots) for i in SAVER_FILE_OPS.get(node.op, ()))


def _upstream(nodes: dict[str, Any], start: Iterable[str]) -> set[str]:
    """The names of ``start`` and every node they depend on (data and control inputs)."""
    seen: set[str] = set()
    todo = [s for s in start if s in nodes]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(n for n in map(_name, nodes[name].input) if n in nodes)
    return seen


def _saver_nodes(meta: Any, nodes: dict[str, Any]) -> tuple[set[str], str]:
    """The top-level nodes ``saver_def`` names (save tensor, restore op) and its filename node."""
    sd = meta.saver_def
    named = {_name(t) for t in (sd.save_tensor_name, sd.restore_op_name) if t}
    return {n for n in named if n in nodes}, _name(sd.filename_tensor_name) if sd.filename_tensor_name else ""


def _saver_functions(meta: Any, nodes: dict[str, Any], lib: dict[str, Any]) -> set[str]:
    """Library functions called only by the ``saver_def`` nodes, with the filename as first input,
    and exposed by no saved object (so nothing but a loader's restore or save calls them)."""
    savers, filename = _saver_nodes(meta, nodes)
    called: set[str] = set()
    for name in savers:
        ins = _data_inputs(nodes[name])
        if ins and _name(ins[0]) == filename:
            called |= called_functions(nodes[name]) & set(lib)
    others = [n for n in meta.graph_def.node if n.name not in savers]
    others += [n for f in lib.values() for n in f.node_def]
    for n in others:
        called -= called_functions(n)
    return called - set(meta.object_graph_def.concrete_functions)


def _check(node: Any, where: str, lib: dict[str, Any], bad: dict[str, list[str]], saver: tuple | None) -> None:
    """Add ``node``'s op (and functions it calls that the SavedModel lacks) to ``bad`` unless allowed;
    ``saver``: (nodes, roots) where the saver-only ops may appear."""
    if node.op not in ALLOWED_OPS and node.op not in lib and not (saver and _saver_allows(node, *saver)):
        bad[node.op].append(where)
    for f in called_functions(node) - {node.op}:
        if f not in lib:
            bad[f"a call of undefined function {f}"].append(where)


def disallowed_ops(meta: Any) -> dict[str, list[str]]:
    """Op type -> where it is (``graph node NAME`` / ``function NAME``), for every op of the meta
    graph that :data:`ALLOWED_OPS` and the saver rules do not allow; empty when all are allowed."""
    nodes = {n.name: n for n in meta.graph_def.node}
    lib = {f.signature.name: f for f in meta.graph_def.library.function}
    bad: dict[str, list[str]] = defaultdict(list)
    savers, filename = _saver_nodes(meta, nodes)
    saver_region = _upstream(nodes, savers)
    for node in meta.graph_def.node:
        top_saver = (nodes, {filename}) if node.name in saver_region and filename else None
        _check(node, f"graph node {node.name}", lib, bad, top_saver)
    saver_fns = _saver_functions(meta, nodes, lib)
    for fname, f in lib.items():
        body = {n.name: n for n in f.node_def}
        args = f.signature.input_arg
        fn_saver = (body, {args[0].name}) if fname in saver_fns and args else None
        for node in f.node_def:
            _check(node, f"function {fname}", lib, bad, fn_saver)
    return dict(bad)


def describe(bad: dict[str, list[str]]) -> str:
    """``Op (in function F), Op2 (in graph node N and 2 more places)`` for an error line."""
    def one(op: str, where: list[str]) -> str:
        more = f" and {len(where) - 1} more place{'s' if len(where) > 2 else ''}" if len(where) > 1 else ""
        return f"{op} (in {where[0]}{more})"

    return ", ".join(one(op, bad[op]) for op in sorted(bad))
