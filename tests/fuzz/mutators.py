"""Mutations: byte-level, YAML/JSON tree edits, and format-aware edits of flatbuffers,
ONNX protos, .keras zips and IDX headers."""
from __future__ import annotations

import copy
import io
import json
import zipfile
from typing import Any, Callable, Iterable

import numpy as np


# -- random values --------------------------------------------------------------------------
HUGE_INTS = [2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**40, 2**63 - 1, 2**63, -1, -(2**31), 0, 10**30]
HUGE_DIMS = [2**31 - 1, 2**31, 2**32 - 1, 2**30, 10**9, 65536 * 65536 - 1]


def weird_value(rng: np.random.Generator) -> Any:
    """A value of a surprising type or size for a YAML/JSON field."""
    choices: list[Callable[[], Any]] = [
        lambda: None, lambda: True, lambda: False, lambda: "", lambda: "x" * int(rng.integers(1, 5000)),
        lambda: int(rng.choice(HUGE_INTS[:5])), lambda: 2**63, lambda: 10**30, lambda: -(10**30), lambda: -1,
        lambda: 0, lambda: 1e308, lambda: float("inf"), lambda: float("-inf"), lambda: float("nan"), lambda: -0.0,
        lambda: 1.5, lambda: [], lambda: {}, lambda: [1, "two", None], lambda: {"a": {"b": [1]}},
        lambda: "../../../etc/passwd", lambda: "\u202e\u0000\ufffd", lambda: "idx:/nonexistent", lambda: "1e9",
        lambda: [[[[[]]]]], lambda: "%s%n{0}", lambda: 3,
    ]
    return choices[int(rng.integers(len(choices)))]()


# -- byte mutators ------------------------------------------------------------------------------
def _pos(rng: np.random.Generator, n: int) -> int:
    return int(rng.integers(0, max(n, 1)))


def bit_flips(rng, data: bytes) -> tuple[bytes, str]:
    if not data:
        return b"\x01", "bitflip(empty)"
    b = bytearray(data)
    n = int(rng.choice([1, 1, 2, 4, 16, 64]))
    for _ in range(n):
        i = _pos(rng, len(b))
        b[i] ^= 1 << int(rng.integers(8))
    return bytes(b), f"bitflip(n={n})"


def overwrite(rng, data: bytes) -> tuple[bytes, str]:
    b = bytearray(data)
    if not b:
        return bytes(rng.integers(0, 256, 16, dtype=np.uint8)), "overwrite(empty)"
    i = _pos(rng, len(b))
    n = int(rng.choice([1, 4, 8, 64, 512]))
    fill = rng.choice(["random", "zero", "ff"])
    chunk = {"random": bytes(rng.integers(0, 256, n, dtype=np.uint8)), "zero": bytes(n), "ff": b"\xff" * n}[fill]
    b[i:i + n] = chunk[: len(b) - i]
    return bytes(b), f"overwrite({fill}, at={i}, n={n})"


def truncate(rng, data: bytes) -> tuple[bytes, str]:
    mode = rng.choice(["zero", "head", "random", "drop-tail"])
    n = {"zero": 0, "head": min(len(data), int(rng.integers(1, 17))), "random": _pos(rng, len(data)),
         "drop-tail": max(len(data) - int(rng.integers(1, 64)), 0)}[mode]
    return data[:n], f"truncate({mode}, to={n} of {len(data)})"


def append_junk(rng, data: bytes) -> tuple[bytes, str]:
    n = int(rng.choice([1, 7, 1024, 65536]))
    junk = bytes(rng.integers(0, 256, n, dtype=np.uint8)) if rng.random() < 0.7 else data[: n]
    return data + junk, f"append({n} bytes)"


def splice(rng, data: bytes) -> tuple[bytes, str]:
    """Delete, duplicate or move a chunk (shifts every later offset)."""
    if len(data) < 4:
        return data + data, "splice(double)"
    i = _pos(rng, len(data))
    n = int(rng.integers(1, max(2, min(1024, len(data) - i))))
    op = rng.choice(["delete", "duplicate", "insert"])
    if op == "delete":
        return data[:i] + data[i + n:], f"splice(delete, at={i}, n={n})"
    if op == "duplicate":
        return data[:i + n] + data[i:i + n] + data[i + n:], f"splice(duplicate, at={i}, n={n})"
    return data[:i] + bytes(rng.integers(0, 256, n, dtype=np.uint8)) + data[i:], f"splice(insert, at={i}, n={n})"


MAGICS = [b"", b"\x00\x00\x00\x00", b"PK\x03\x04", b"\x89HDF\r\n\x1a\n", b"\x1f\x8b\x08\x00", b"TFL3",
          b"\x08\x07\x12\x0b", b"{", b"\x7fELF", b"%PDF-1.4", b"\x00\x00\x08\x03", b"\x00\x00\x0d\x01"]


def wrong_header(rng, data: bytes) -> tuple[bytes, str]:
    magic = MAGICS[int(rng.integers(len(MAGICS)))]
    mode = rng.choice(["replace", "prefix", "replace-16"])
    if mode == "prefix":
        return magic + data, f"header(prefix {magic[:8]!r})"
    if mode == "replace-16":
        return bytes(rng.integers(0, 256, 16, dtype=np.uint8)) + data[16:], "header(random 16 bytes)"
    return magic + data[len(magic):], f"header(replace with {magic[:8]!r})"


def int32_patch(rng, data: bytes) -> tuple[bytes, str]:
    """Overwrite aligned int32s (offsets, lengths, counts in binary formats) with boundary values."""
    b = bytearray(data)
    if len(b) < 8:
        return bit_flips(rng, data)
    n = int(rng.choice([1, 1, 3, 8]))
    near_start = rng.random() < 0.5  # flatbuffer/zip/IDX headers and vtables live near the start
    for _ in range(n):
        hi = min(len(b) - 4, 256) if near_start else len(b) - 4
        i = _pos(rng, hi // 4) * 4
        v = int(rng.choice(HUGE_INTS[:-1])) & 0xFFFFFFFF
        b[i:i + 4] = v.to_bytes(4, "little")
    return bytes(b), f"int32({n}, {'head' if near_start else 'anywhere'})"


BYTE_MUTATORS = [bit_flips, overwrite, truncate, append_junk, splice, wrong_header, int32_patch]


def byte_mutation(rng, data: bytes) -> tuple[bytes, str]:
    fn = BYTE_MUTATORS[int(rng.integers(len(BYTE_MUTATORS)))]
    return fn(rng, data)


# -- tree (YAML/JSON) mutators ------------------------------------------------------------------
def _nodes(tree: Any, path: tuple = ()) -> Iterable[tuple[tuple, Any]]:
    yield path, tree
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _nodes(v, path + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _nodes(v, path + (i,))


def _get(tree: Any, path: tuple) -> Any:
    for p in path:
        tree = tree[p]
    return tree


def mutate_tree(rng, tree: Any, hot_keys: tuple[str, ...] = ()) -> tuple[Any, str]:
    """One structural edit of a JSON-like tree: replace, delete, rename, add, nest, huge."""
    tree = copy.deepcopy(tree)
    nodes = [p for p, _ in _nodes(tree) if p]
    if not nodes:
        return weird_value(rng), "tree(replace root)"
    hot = [p for p in nodes if p and isinstance(p[-1], str) and p[-1] in hot_keys]
    path = hot[int(rng.integers(len(hot)))] if hot and rng.random() < 0.5 else nodes[int(rng.integers(len(nodes)))]
    parent, key = _get(tree, path[:-1]), path[-1]
    where = ".".join(str(p) for p in path)
    op = rng.choice(["replace", "replace", "huge", "delete", "rename", "add", "wrap", "swap-type"])
    if op == "replace":
        parent[key] = weird_value(rng)
    elif op == "huge":
        parent[key] = int(rng.choice(HUGE_DIMS)) if rng.random() < 0.7 else [int(rng.choice(HUGE_DIMS))] * 4
    elif op == "delete":
        del parent[key]
    elif op == "rename" and isinstance(parent, dict):
        parent[str(key) + "_x" if rng.random() < 0.5 else str(key)[:-1]] = parent.pop(key)
    elif op == "add":
        target = parent[key] if isinstance(parent[key], (dict, list)) else parent
        if isinstance(target, dict):
            target[f"unknown_{int(rng.integers(100))}"] = weird_value(rng)
        else:
            target.append(weird_value(rng))
    elif op == "wrap":
        parent[key] = [parent[key]] if rng.random() < 0.5 else {"value": parent[key]}
    else:  # swap-type: the same content, another type
        v = parent[key]
        parent[key] = (str(v) if not isinstance(v, str) else (int(v) if v.isdigit() else [v]))
    return tree, f"tree({op} {where})"


def nest_text(rng, text: str) -> tuple[str, str]:
    """Replace one value with brackets nested very deep (parsers recurse)."""
    depth = int(rng.choice([200, 1000, 5000, 100000]))
    open_, close = ("[", "]") if rng.random() < 0.7 else ("{a: ", "}")
    blob = open_ * depth + close * depth
    lines = text.splitlines()
    cands = [i for i, ln in enumerate(lines) if ":" in ln and not ln.strip().startswith("#")]
    if not cands:
        return blob, f"nest(depth={depth}, whole)"
    i = cands[int(rng.integers(len(cands)))]
    head = lines[i].split(":", 1)[0]
    lines[i] = f"{head}: {blob}"
    return "\n".join(lines) + "\n", f"nest(depth={depth}, line {i + 1})"


def line_mutation(rng, text: str) -> tuple[str, str]:
    lines = text.splitlines()
    if not lines:
        return "\t:\n", "lines(empty)"
    i = _pos(rng, len(lines))
    op = rng.choice(["delete", "duplicate", "swap", "indent", "dedent", "tab", "colon"])
    if op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, lines[i])
    elif op == "swap":
        j = _pos(rng, len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif op == "indent":
        lines[i] = "   " + lines[i]
    elif op == "dedent":
        lines[i] = lines[i].lstrip()
    elif op == "tab":
        lines[i] = "\t" + lines[i]
    else:
        lines[i] = lines[i].replace(":", "", 1) if ":" in lines[i] else lines[i] + ":"
    return "\n".join(lines) + "\n", f"lines({op} {i + 1})"


def non_utf8(rng, data: bytes) -> tuple[bytes, str]:
    b = bytearray(data)
    bad = [b"\xff\xfe", b"\xc3\x28", b"\x80", b"\xed\xa0\x80", b"\x00"]
    for _ in range(int(rng.integers(1, 4))):
        i = _pos(rng, len(b))
        b[i:i] = bad[int(rng.integers(len(bad)))]
    return bytes(b), "non-utf8"


YAML_BOMB = ('a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
             'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n'
             'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n'
             'g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n')


def text_mutation(rng, data: bytes, loads: Callable[[str], Any], dumps: Callable[[Any], str],
                  hot_keys: tuple[str, ...]) -> tuple[bytes, str]:
    """A YAML/JSON file: structural edits of the parsed tree, of lines, or of bytes."""
    text = data.decode("utf-8")
    r = rng.random()
    if r < 0.45:
        tree, how = mutate_tree(rng, loads(text), hot_keys)
        if rng.random() < 0.15:  # two edits
            tree, how2 = mutate_tree(rng, tree, hot_keys)
            how += " + " + how2
        return dumps(tree).encode("utf-8", "surrogatepass"), how
    if r < 0.6:
        out, how = line_mutation(rng, text)
        return out.encode(), how
    if r < 0.68:
        out, how = nest_text(rng, text)
        return out.encode(), how
    if r < 0.74:
        return non_utf8(rng, data)
    if r < 0.77:
        return (YAML_BOMB + text).encode(), "yaml-alias-bomb"
    return byte_mutation(rng, data)


# -- format-aware mutators -------------------------------------------------------------------
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
