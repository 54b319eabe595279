"""Format-aware mutations: well-formed files with bad content (flatbuffers, ONNX protos, .keras
zips and HDF5, IDX headers and values, SavedModel graphs)."""
from __future__ import annotations

import copy
import io
import json
import zipfile

import numpy as np

from tests.fuzz.mutators import HUGE_DIMS, HUGE_INTS, _pos, byte_mutation, int32_patch, text_mutation


def tflite_semantic(rng, data: bytes) -> tuple[bytes, str]:
    """Re-serialise the flatbuffer with one field changed: a well-formed file with bad content."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    m = s.ModelT.InitFromObj(s.Model.GetRootAs(data, 0))
    sg = m.subgraphs[0]
    tensors, ops = sg.tensors, sg.operators
    ti = int(rng.integers(len(tensors)))
    t = tensors[ti]
    op = rng.choice(["huge-dim", "input-dims", "neg-dim", "rank", "dtype", "buffer", "opcode", "op-input",
                     "io-index", "scale", "no-buffers", "builtin-code", "empty-subgraph", "version", "shape-sig"])
    how = op
    if op == "huge-dim" and t.shape is not None and len(t.shape):
        d = _pos(rng, len(t.shape))
        t.shape = [int(v) for v in t.shape]
        t.shape[d] = int(rng.choice(HUGE_DIMS))
        how = f"huge-dim(tensor {ti}, dim {d} = {t.shape[d]})"
    elif op == "input-dims":
        inp = tensors[sg.inputs[0]]
        inp.shape = [1, int(rng.choice(HUGE_DIMS)), int(rng.choice(HUGE_DIMS)), 1]
        inp.shapeSignature = None
        how = f"input-dims({inp.shape})"
    elif op == "neg-dim" and t.shape is not None and len(t.shape):
        t.shape = [int(v) for v in t.shape]
        t.shape[_pos(rng, len(t.shape))] = int(rng.choice([-1, -7, 0]))
        how = f"neg-dim(tensor {ti})"
    elif op == "rank":
        t.shape = [int(rng.integers(1, 5))] * int(rng.choice([0, 1, 7, 64]))
        how = f"rank(tensor {ti}, {len(t.shape)})"
    elif op == "dtype":
        t.type = int(rng.choice([1, 2, 4, 5, 6, 8, 11, 13, 14, 17, 99]))
        how = f"dtype(tensor {ti} = {t.type})"
    elif op == "buffer":
        t.buffer = int(rng.choice([len(m.buffers), len(m.buffers) + 1000, 2**31 - 1, 0]))
        how = f"buffer(tensor {ti} = {t.buffer})"
    elif op == "opcode" and ops:
        o = ops[_pos(rng, len(ops))]
        o.opcodeIndex = int(rng.choice([len(m.operatorCodes), 2**31 - 1, 0]))
        how = f"opcode-index({o.opcodeIndex})"
    elif op == "op-input" and ops:
        o = ops[_pos(rng, len(ops))]
        ins = [int(v) for v in o.inputs]
        ins[_pos(rng, len(ins))] = int(rng.choice([len(tensors), -5, 2**31 - 1, ti]))
        o.inputs = ins
        how = f"op-input({ins})"
    elif op == "io-index":
        sg.outputs = [int(rng.choice([len(tensors), -1, ti]))]
        how = f"outputs({sg.outputs})"
    elif op == "scale" and t.quantization is not None and t.quantization.scale is not None:
        t.quantization.scale = [float(rng.choice([0.0, -1.0, np.inf, np.nan, 1e38]))] * max(1, len(t.quantization.scale))
        how = f"scale(tensor {ti} = {t.quantization.scale[0]})"
    elif op == "no-buffers":
        m.buffers = m.buffers[:1]
        how = "buffers(keep 1)"
    elif op == "builtin-code":
        c = m.operatorCodes[_pos(rng, len(m.operatorCodes))]
        c.builtinCode = int(rng.choice([0, 32, 200, 999]))
        c.deprecatedBuiltinCode = min(c.builtinCode, 127)
        how = f"builtin-code({c.builtinCode})"
    elif op == "empty-subgraph":
        sg.operators = []
        how = "no-operators"
    elif op == "version":
        m.version = int(rng.choice([0, 2, 99]))
        how = f"schema-version({m.version})"
    else:
        t.shapeSignature = [int(rng.choice([-1, 2**31 - 1, 0]))] * max(1, len(t.shape if t.shape is not None else []))
        how = f"shape-signature(tensor {ti})"
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output()), f"flatbuffer:{how}"


def onnx_semantic(rng, data: bytes) -> tuple[bytes, str]:
    """Re-serialise the ONNX protobuf with one field changed."""
    import onnx

    m = onnx.load_from_string(data)
    g = m.graph
    op = rng.choice(["input-dim", "init-dims", "init-data", "init-type", "op-type", "node-input", "drop-node",
                     "attr", "opset", "ir", "output-name", "dup-node", "elem-type"])
    how = op
    if op == "input-dim":
        dims = g.input[0].type.tensor_type.shape.dim
        d = dims[_pos(rng, len(dims))]
        d.dim_value = int(rng.choice(HUGE_DIMS + [0]))
        how = f"input-dim({d.dim_value})"
    elif op in ("init-dims", "init-data", "init-type") and len(g.initializer):
        init = g.initializer[_pos(rng, len(g.initializer))]
        if op == "init-dims" and len(init.dims):
            init.dims[_pos(rng, len(init.dims))] = int(rng.choice(HUGE_DIMS + [0, 3]))
            how = f"init-dims({init.name}: {list(init.dims)})"
        elif op == "init-data" and init.raw_data:
            init.raw_data = init.raw_data[: _pos(rng, len(init.raw_data))]
            how = f"init-data({init.name} truncated)"
        else:
            init.data_type = int(rng.choice([0, 2, 8, 11, 16, 99]))
            how = f"init-type({init.name} = {init.data_type})"
    elif op == "op-type" and len(g.node):
        n = g.node[_pos(rng, len(g.node))]
        n.op_type = str(rng.choice(["Conv", "Relu", "Loop", "NoSuchOp", "Softmax", "If", ""]))
        how = f"op-type({n.name} = {n.op_type!r})"
    elif op == "node-input" and len(g.node):
        n = g.node[_pos(rng, len(g.node))]
        if len(n.input):
            n.input[_pos(rng, len(n.input))] = str(rng.choice(["missing_tensor", "", g.output[0].name]))
        how = f"node-input({n.name})"
    elif op == "drop-node" and len(g.node):
        i = _pos(rng, len(g.node))
        del g.node[i]
        how = f"drop-node({i})"
    elif op == "dup-node" and len(g.node):
        g.node.append(copy.deepcopy(g.node[_pos(rng, len(g.node))]))
        how = "duplicate-node"
    elif op == "attr":
        with_attr = [n for n in g.node if len(n.attribute)]
        if with_attr:
            n = with_attr[_pos(rng, len(with_attr))]
            a = n.attribute[_pos(rng, len(n.attribute))]
            if len(a.ints):
                a.ints[_pos(rng, len(a.ints))] = int(rng.choice(HUGE_INTS[:-1] + [-(2**62)]))
            else:
                a.i = int(rng.choice(HUGE_INTS[:-1]))
            how = f"attr({n.op_type}.{a.name})"
    elif op == "opset":
        m.opset_import[0].version = int(rng.choice([1, 6, 99, 10**6]))
        how = f"opset({m.opset_import[0].version})"
    elif op == "ir":
        m.ir_version = int(rng.choice([0, 1, 99]))
        how = f"ir-version({m.ir_version})"
    elif op == "output-name":
        g.output[0].name = "nowhere"
        how = "output-name"
    else:
        g.input[0].type.tensor_type.elem_type = int(rng.choice([0, 2, 6, 8, 99]))
        how = f"input-elem-type({g.input[0].type.tensor_type.elem_type})"
    return m.SerializeToString(), f"onnx:{how}"


KERAS_HOT = ("units", "filters", "kernel_size", "pool_size", "strides", "batch_input_shape", "batch_shape",
             "target_shape", "class_name", "module", "registered_name", "activation", "dtype", "data_format",
             "padding", "layers", "inbound_nodes", "input_layers", "output_layers", "keras_version")


def keras_zip(rng, data: bytes) -> tuple[bytes, str]:
    """Rewrite the .keras zip with one member changed (CRCs stay valid, so the loader sees it)."""
    zin = zipfile.ZipFile(io.BytesIO(data))
    members = {i.filename: zin.read(i.filename) for i in zin.infolist()}
    names = sorted(members)
    name = names[_pos(rng, len(names))]
    op = rng.random()
    if op < 0.08:
        del members[name]
        how = f"drop {name}"
    elif op < 0.12:
        members[f"extra_{int(rng.integers(10))}.bin"] = bytes(rng.integers(0, 256, 100, dtype=np.uint8))
        how = "add member"
    elif name.endswith(".json"):
        new, how = text_mutation(rng, members[name], json.loads, lambda t: json.dumps(t), KERAS_HOT)
        members[name] = new
        how = f"{name}: {how}"
    else:
        new, how = (byte_mutation(rng, members[name]) if rng.random() < 0.8 else int32_patch(rng, members[name]))
        members[name] = new
        how = f"{name}: {how}"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for n, b in members.items():
            z.writestr(n, b)
    return out.getvalue(), f"zip:{how}"


def idx_huge_dims(rng, raw: bytes) -> tuple[bytes, str]:
    """Declare huge (or zero) dimensions in an IDX header; the data stays as it was."""
    b = bytearray(raw)
    rank = b[3]
    if rank == 0:
        return raw, "idx-dims(rank 0)"
    d = _pos(rng, rank)
    v = int(rng.choice(HUGE_DIMS + [0, 2**32 - 1]))
    b[4 + 4 * d: 8 + 4 * d] = v.to_bytes(4, "big")
    return bytes(b), f"idx-dims(dim {d} = {v})"


def idx_header(rng, raw: bytes) -> tuple[bytes, str]:
    b = bytearray(raw)
    field = rng.choice(["dtype", "rank", "magic"])
    if field == "dtype":
        b[2] = int(rng.choice([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07, 0xFF]))
        return bytes(b), f"idx-dtype({b[2]:#x})"
    if field == "rank":
        b[3] = int(rng.choice([0, 1, 2, 3, 4, 255]))
        return bytes(b), f"idx-rank({b[3]})"
    b[0:2] = bytes(rng.integers(0, 256, 2, dtype=np.uint8))
    return bytes(b), "idx-magic"


def idx_values(rng, raw: bytes) -> tuple[bytes, str]:
    """Keep the header, change the values (labels out of range, one class, zero images ...)."""
    b = bytearray(raw)
    rank = b[3]
    header = 4 + 4 * rank
    mode = rng.choice(["random", "max", "zero-count"])
    if mode == "zero-count" and rank:
        b[4:8] = (0).to_bytes(4, "big")
        return bytes(b[:header]), "idx-values(zero items)"
    n = len(b) - header
    fill = (bytes(rng.integers(0, 256, n, dtype=np.uint8)) if mode == "random" else b"\xff" * n)
    b[header:] = fill
    return bytes(b), f"idx-values({mode})"


def keras_h5(rng, data: bytes) -> tuple[bytes, str]:
    """Rewrite an .h5 Keras file with its model_config JSON edited, an attribute dropped or a
    weight dataset changed (the HDF5 container stays valid, so the loader sees the edit)."""
    import h5py

    buf = io.BytesIO(data)
    with h5py.File(buf, "r+") as f:
        op = rng.random()
        if op < 0.6 and "model_config" in f.attrs:
            raw = f.attrs["model_config"]
            raw = raw.encode() if isinstance(raw, str) else bytes(raw)
            new, how = text_mutation(rng, raw, json.loads, lambda t: json.dumps(t), KERAS_HOT)
            f.attrs["model_config"] = new.decode("utf-8", "replace")
            how = f"model_config: {how}"
        elif op < 0.7 and len(f.attrs):
            name = sorted(f.attrs)[_pos(rng, len(f.attrs))]
            del f.attrs[name]
            how = f"drop attr {name}"
        else:
            datasets: list[str] = []
            f.visit(lambda n: datasets.append(n) if isinstance(f[n], h5py.Dataset) else None)
            if not datasets:
                return byte_mutation(rng, data)
            name = sorted(datasets)[_pos(rng, len(datasets))]
            old = f[name]
            if rng.random() < 0.5 and old.size:  # a wrong shape
                shape = tuple(int(d) for d in old.shape) + (int(rng.choice([1, 2, 3])),)
                del f[name]
                f.create_dataset(name, data=np.zeros(shape, np.float32))
                how = f"dataset {name}: shape {shape}"
            else:  # odd values
                values = np.asarray(old[()], dtype=np.float32)
                values.flat[: max(1, values.size // 3)] = rng.choice([np.nan, np.inf, -np.inf, 1e30])
                old[...] = values
                how = f"dataset {name}: non-finite values"
    return buf.getvalue(), f"h5:{how}"


SAVEDMODEL_OPS = ("WriteFile", "ReadFile", "PyFunc", "NoSuchOp", "Conv2D", "Relu", "MatMul", "Const", "")


def savedmodel_semantic(rng, data: bytes) -> tuple[bytes, str]:
    """Re-serialise a saved_model.pb with one field changed: a signature's tensors, an op type,
    a node input, an attribute, or a dropped function/signature."""
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString(data)
    meta = sm.meta_graphs[0]
    sigs = [k for k in meta.signature_def if not k.startswith("__")]
    funcs = list(meta.graph_def.library.function)
    nodes = list(meta.graph_def.node) + [n for f in funcs for n in f.node_def]
    op = rng.choice(["sig-dim", "sig-dtype", "sig-drop", "sig-name", "op-type", "node-input", "attr", "drop-func",
                     "drop-meta", "tags"])
    how = str(op)
    if op in ("sig-dim", "sig-dtype", "sig-name") and sigs:
        sig = meta.signature_def[sigs[_pos(rng, len(sigs))]]
        tensors = list(sig.inputs.values()) + list(sig.outputs.values())
        t = tensors[_pos(rng, len(tensors))]
        if op == "sig-dim" and len(t.tensor_shape.dim):
            d = t.tensor_shape.dim[_pos(rng, len(t.tensor_shape.dim))]
            d.size = int(rng.choice(HUGE_DIMS + [0, -1, 3]))
            how = f"sig-dim({d.size})"
        elif op == "sig-dtype":
            t.dtype = int(rng.choice([0, 2, 3, 7, 99]))
            how = f"sig-dtype({t.dtype})"
        else:
            t.name = str(rng.choice(["nowhere:0", "", "x:7"]))
            how = f"sig-tensor-name({t.name!r})"
    elif op == "sig-drop" and sigs:
        del meta.signature_def[sigs[_pos(rng, len(sigs))]]
    elif op == "op-type" and nodes:
        n = nodes[_pos(rng, len(nodes))]
        n.op = str(rng.choice(SAVEDMODEL_OPS))
        how = f"op-type({n.name} = {n.op!r})"
    elif op == "node-input" and nodes:
        n = nodes[_pos(rng, len(nodes))]
        if len(n.input):
            n.input[_pos(rng, len(n.input))] = str(rng.choice(["missing_node", "", "^nowhere"]))
        how = f"node-input({n.name})"
    elif op == "attr" and nodes:
        with_attr = [n for n in nodes if len(n.attr)]
        if with_attr:
            n = with_attr[_pos(rng, len(with_attr))]
            key = sorted(n.attr)[_pos(rng, len(n.attr))]
            a = n.attr[key]
            a.Clear()
            a.i = int(rng.choice(HUGE_INTS[:-1]))
            how = f"attr({n.op}.{key} = int)"
    elif op == "drop-func" and funcs:
        del meta.graph_def.library.function[_pos(rng, len(funcs))]
    elif op == "drop-meta":
        meta.ClearField("object_graph_def")
    else:
        meta.meta_info_def.ClearField("tags")
        meta.meta_info_def.tags.append(str(rng.choice(["train", "", "serve2"])))
        how = f"tags({list(meta.meta_info_def.tags)})"
    return sm.SerializeToString(), f"savedmodel:{how}"
