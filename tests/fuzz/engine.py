"""A seeded, bounded fuzzer of the ``edgekit`` command line.

Valid seed files (a tiny .keras model, its .tflite float/int8 and .onnx float/int8 exports,
an MNIST-style IDX folder, the recipes of ``recipes/`` and two run manifests) are made once,
offline. Each case mutates one of them (bit flips, byte overwrites, truncation, appended junk,
wrong headers, huge dimensions, and structural edits of flatbuffers, ONNX protos, the zip
members of a .keras file, YAML and JSON) and feeds it through the command a user would run.

Cases run in worker processes that import TensorFlow once and call the CLI in-process with
click's ``CliRunner``; the parent hands out cases, so a worker that dies (a signal: a "crash")
or overruns the per-case timeout (a "hang") is killed and replaced, and the case is recorded.
Every case must end in success (exit 0) or a clean error (a non-zero exit whose last stderr
line is the one ``Error: ...`` line); a traceback, a crash, a hang or any other ending is a
finding. A case depends only on (seed, kind, index), so any finding replays on its own:

    python benchmarks/fuzz_cli.py --seed 0 --only tflite:17 --keep

``python -m tests.fuzz.engine seeds DIR`` builds the seeds; ``... worker`` is the worker loop.
"""
from __future__ import annotations

import collections
import copy
import dataclasses
import gzip
import io
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("tflite", "onnx", "keras", "idx", "recipe", "manifest")
OUTCOMES = ("clean", "success", "crash", "traceback", "hang", "bad_error")
FINDINGS = ("crash", "traceback", "hang", "bad_error")
# images the dataset options keep: small, so a case that gets as far as inference is quick
DATA_OPTS = ["--dataset", "digits", "--limit", "200"]


# -- seeds ------------------------------------------------------------------------------------
def make_seeds(root: str | Path) -> dict[str, Any]:
    """Write the valid seed files under ``root`` and return their paths (also in seeds.json).

    Imports TensorFlow: run it in a child process (:func:`build_seeds`) to keep the parent light.
    """
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    from edgekit._lazy import keras
    from edgekit.data import load_dataset
    from edgekit.data.sources import load_raw
    from edgekit.export import ExportConfig, export
    from edgekit.models.io import save_model

    k = keras()
    k.utils.set_random_seed(0)
    L = k.layers
    model = k.Sequential([
        k.Input(shape=(28, 28, 1), name="image"),
        L.Conv2D(4, 3, strides=2, activation="relu", name="conv1"),
        L.MaxPooling2D(2, name="pool1"),
        L.Flatten(name="flatten"),
        L.Dense(10, activation="softmax", name="output"),
    ], name="fuzz_tiny")
    save_model(model, root / "model.keras")
    data = load_dataset("digits", seed=0, limit=200)
    res = export(root / "model.keras", data, ["tflite", "tflite-int8", "onnx", "onnx-int8"], root / "export",
                 config=ExportConfig(representative_samples=50, runs=5))

    idx_dir = root / "idx"
    idx_dir.mkdir()
    x, y = load_raw("digits")["all"]
    for prefix, sl in (("train", slice(0, 150)), ("t10k", slice(150, 210))):
        (idx_dir / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(x[sl]), mtime=0))
        (idx_dir / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(y[sl].astype(np.uint8)),
                                                                                mtime=0))
    recipes = root / "recipes"
    recipes.mkdir()
    for f in sorted((ROOT / "recipes").glob("*.yaml")):
        shutil.copy(f, recipes / f.name)

    sys.path.insert(0, str(ROOT))
    from tests.gate.fabricate import make_run

    make_run(root / "run_fabricated")
    seeds = {
        "root": str(root),
        "keras": str(root / "model.keras"),
        "tflite": [str(res.path("tflite")), str(res.path("tflite-int8"))],
        "onnx": [str(res.path("onnx")), str(res.path("onnx-int8"))],
        "idx": str(idx_dir),
        "recipes": [str(p) for p in sorted(recipes.glob("*.yaml"))],
        "runs": [str(root / "run_fabricated"), str(root / "export")],
    }
    (root / "seeds.json").write_text(json.dumps(seeds, indent=2))
    return seeds


def build_seeds(root: str | Path, timeout_s: int = 600) -> dict[str, Any]:
    """:func:`make_seeds` in a child process (TensorFlow stays out of the caller)."""
    proc = subprocess.run([sys.executable, "-m", "tests.fuzz.engine", "seeds", str(root)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout_s, env=_child_env())
    if proc.returncode != 0:
        raise RuntimeError(f"building the fuzz seeds failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads((Path(root) / "seeds.json").read_text())


def idx_bytes(a: np.ndarray, dtype_code: int = 0x08) -> bytes:
    header = bytes([0, 0, dtype_code, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    return header + np.ascontiguousarray(a).tobytes()


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


# -- cases --------------------------------------------------------------------------------------
@dataclasses.dataclass
class Case:
    kind: str
    index: int
    seed: int
    mutation: str
    args: list[str]
    folder: str

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.index}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def case_rng(seed: int, kind: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, KINDS.index(kind), index])


def build_case(kind: str, index: int, seed: int, seeds: dict[str, Any], work: Path) -> Case:
    """Write the mutated input(s) of case (kind, index) under ``work`` and return the command."""
    rng = case_rng(seed, kind, index)
    folder = work / f"{kind}-{index}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    fn = {"tflite": _case_tflite, "onnx": _case_onnx, "keras": _case_keras, "idx": _case_idx,
          "recipe": _case_recipe, "manifest": _case_manifest}[kind]
    mutation, args = fn(rng, seeds, folder)
    return Case(kind, index, seed, mutation, args, str(folder))


def _pick(rng, items: list) -> Any:
    return items[int(rng.integers(len(items)))]


def _binary(rng, data: bytes, semantic: Callable | None, share: float) -> tuple[bytes, str]:
    if semantic is not None and rng.random() < share:
        try:
            return semantic(rng, data)
        except Exception as e:  # the seed's structure did not allow this edit: fall back to bytes
            out, how = byte_mutation(rng, data)
            return out, f"{how} (semantic skipped: {type(e).__name__})"
    return byte_mutation(rng, data)


def _validate_args(path: Path, seeds: dict, folder: Path) -> list[str]:
    return ["validate", str(path), "--reference", seeds["keras"], *DATA_OPTS, "--runs", "5",
            "--out", str(folder / "out"), "-q"]


def _case_artifact(kind: str, semantic, p_semantic: float):
    """A case maker for a runtime artifact kind: mutate one of its seeds, then validate it."""
    def case(rng, seeds, folder):
        src = Path(_pick(rng, seeds[kind]))
        data, how = _binary(rng, src.read_bytes(), semantic, p_semantic)
        dest = folder / src.name
        dest.write_bytes(data)
        return f"{src.name}: {how}", _validate_args(dest, seeds, folder)
    return case


_case_tflite = _case_artifact("tflite", tflite_semantic, 0.4)
_case_onnx = _case_artifact("onnx", onnx_semantic, 0.45)


def _case_keras(rng, seeds, folder):
    src = Path(seeds["keras"])
    data, how = _binary(rng, src.read_bytes(), keras_zip, 0.6)
    dest = folder / "model.keras"
    dest.write_bytes(data)
    if rng.random() < 0.25:  # conversion of a model that loads
        args = ["export", str(dest), "--target", "tflite", "--no-validate", "--out", str(folder / "out"),
                *DATA_OPTS, "-q"]
    else:
        args = ["evaluate", str(dest), *DATA_OPTS, "--runs", "5"]
    return how, args


def _case_idx(rng, seeds, folder):
    src = Path(seeds["idx"])
    dest = folder / "idx"
    shutil.copytree(src, dest)
    files = sorted(dest.iterdir())
    f = _pick(rng, files)
    r = rng.random()
    if r < 0.05:
        f.unlink()
        how = f"{f.name}: removed"
    elif r < 0.3:  # the gzip stream itself
        data, how = byte_mutation(rng, f.read_bytes())
        f.write_bytes(data)
        how = f"{f.name} (gzip): {how}"
    else:  # the IDX content, written back gzip'd or raw
        raw = gzip.decompress(f.read_bytes())
        mut = _pick(rng, [idx_huge_dims, idx_huge_dims, idx_header, idx_values, byte_mutation, truncate])
        data, how = mut(rng, raw)
        if rng.random() < 0.7:
            f.write_bytes(gzip.compress(data, mtime=0))
        else:
            f.unlink()
            f = f.with_suffix("")
            f.write_bytes(data)
        how = f"{f.name}: {how}"
    return how, ["evaluate", seeds["keras"], "--dataset", f"idx:{dest}", "--runs", "5"]


RECIPE_HOT = ("spec", "limit", "epochs", "batch_size", "lr", "targets", "name", "test_split", "val_split", "runs",
              "max_size", "sparsity", "clusters", "optimizer", "schedule", "model", "max_diff", "threads", "seed",
              "representative_samples", "opset", "arena_size", "max_latency_ratio", "baseline", "quantize")


def _case_recipe(rng, seeds, folder):
    import yaml

    src = Path(_pick(rng, seeds["recipes"]))
    data, how = text_mutation(rng, src.read_bytes(), yaml.safe_load,
                              lambda t: yaml.safe_dump(t, sort_keys=False, allow_unicode=True), RECIPE_HOT)
    dest = folder / src.name
    dest.write_bytes(data)
    args = ["recipe", "check", str(dest)] if rng.random() < 0.7 else ["recipe", "show", str(dest)]
    return f"{src.name}: {how}", args


MANIFEST_HOT = ("format", "stages", "artifacts", "path", "sha256", "bytes", "gzip_bytes", "targets", "metrics",
                "accuracy", "latency_p50_ms", "agreement_pct", "validate", "train", "config", "history", "dataset",
                "input_shape", "sizes", "reference", "epoch", "loss", "checks", "compress", "export", "ops")


def _case_manifest(rng, seeds, folder):
    src = Path(_pick(rng, seeds["runs"]))
    run = folder / "run"
    shutil.copytree(src, run)
    target = run / "manifest.json"
    if (run / "history.json").is_file() and rng.random() < 0.2:
        target = run / "history.json"  # the report reads it as listed in the manifest
    data, how = text_mutation(rng, target.read_bytes(), json.loads, lambda t: json.dumps(t, indent=1),
                              MANIFEST_HOT)
    target.write_bytes(data)
    how = f"{src.name}/{target.name}: {how}"
    r = rng.random()
    if r < 0.45:
        args = ["gate", str(run), "--max-size", "1MB", "--min-agreement", "90", "--max-latency-ms", "5"]
        if rng.random() < 0.3:
            args += ["--json", "--junit", str(folder / "gates.xml")]
    elif r < 0.55:
        args = ["gate", str(run / "manifest.json"), "--max-latency-ratio", "tflite-int8:tflite=2",
                "--baseline", str(Path(_pick(rng, seeds["runs"])) / "manifest.json"), "--max-size-growth", "5%"]
    else:
        args = ["report", str(run), "--out", str(folder / "report"), "-q"]
    return how, args


# -- outcomes -------------------------------------------------------------------------------------
def classify(reply: dict[str, Any]) -> str:
    """success, clean (one ``Error:`` line last), traceback or bad_error (any other failure)."""
    text = reply.get("stdout", "") + reply.get("stderr", "")
    if reply.get("exception") or "Traceback (most recent call last)" in text:
        return "traceback"
    if reply.get("exit_code") == 0:
        return "success"
    lines = [ln for ln in reply.get("stderr", "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error:")]
    if lines and lines[-1].startswith("Error: ") and len(errors) == 1 and len(lines[-1]) < 2000:
        return "clean"
    return "bad_error"


@dataclasses.dataclass
class Finding:
    case: Case
    outcome: str
    detail: str

    def describe(self) -> str:
        c = self.case
        return (f"[{self.outcome}] {c.name} (seed {c.seed}) {c.mutation}\n  $ edgekit {' '.join(c.args)}\n"
                f"  replay: python benchmarks/fuzz_cli.py --seed {c.seed} --only {c.name} --keep\n"
                + "\n".join("  | " + ln for ln in self.detail.strip().splitlines()[-40:]))


@dataclasses.dataclass
class FuzzResult:
    counts: dict[str, collections.Counter]
    findings: list[Finding]
    errors: dict[str, collections.Counter]  # kind -> each clean error line, numbers and paths masked
    seconds: float
    cases: int
    slowest: list[tuple[float, str, str, str]]  # (seconds, case, outcome, mutation), slowest first
    peak_rss_mb: float  # the largest resident set of any worker or runtime probe it started

    def total(self) -> collections.Counter:
        out: collections.Counter = collections.Counter()
        for c in self.counts.values():
            out.update(c)
        return out

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for kind in [k for k in KINDS if k in self.counts] + ["total"]:
            c = self.total() if kind == "total" else self.counts[kind]
            rows.append({"kind": kind, "inputs tried": sum(c.values()), "clean errors": c["clean"],
                         "successes": c["success"], "crashes": c["crash"], "tracebacks": c["traceback"],
                         "hangs": c["hang"], "other endings": c["bad_error"]})
        return rows

    @property
    def ok(self) -> bool:
        return not self.findings


# -- workers ----------------------------------------------------------------------------------------
def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["TF_USE_LEGACY_KERAS"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def worker_main() -> None:
    """Read cases (JSON lines) on stdin, run each through the CLI in-process, answer on stdout.

    The protocol uses duplicates of fds 0/1; the real fds 0/1 point at /dev/null so native
    code and child processes cannot corrupt it.
    """
    proto_in = os.fdopen(os.dup(0), "r")
    proto_out = os.fdopen(os.dup(1), "w", buffering=1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    import traceback

    from click.testing import CliRunner

    from edgekit._lazy import keras
    from edgekit.cli.main import cli

    keras()  # pay TensorFlow's import before the first case's clock starts
    import ai_edge_litert.interpreter  # noqa: F401
    import onnxruntime  # noqa: F401

    proto_out.write(json.dumps({"ready": True}) + "\n")
    for line in proto_in:
        case = json.loads(line)
        t0 = time.perf_counter()
        if case["args"][:1] == ["__selftest__"]:  # lets the tests check that the harness sees each failure
            _selftest(case["args"][1])
        res = CliRunner().invoke(cli, case["args"], prog_name="edgekit", catch_exceptions=True)
        exc = None
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            exc = "".join(traceback.format_exception(*res.exc_info))
        reply = {"exit_code": res.exit_code, "stdout": res.stdout[-20000:], "stderr": res.stderr[-20000:],
                 "exception": exc, "seconds": time.perf_counter() - t0}
        try:
            keras().backend.clear_session()
        except Exception:
            pass
        proto_out.write(json.dumps(reply) + "\n")


def _selftest(what: str) -> None:
    if what == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif what == "hang":
        time.sleep(3600)
    elif what == "exit":
        os._exit(3)


class _Worker:
    def __init__(self, log: Path, start_timeout: float):
        self.log = log
        self.log_fh = open(log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz.engine", "worker"], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log_fh,
                                     env=_child_env(), start_new_session=True)
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buf = b""
        self.case: Case | None = None
        self.deadline = 0.0
        reply = self.read_line(time.monotonic() + start_timeout)
        if not isinstance(reply, dict) or not reply.get("ready"):
            self.kill()
            raise RuntimeError(f"a fuzz worker did not start ({reply!r}); see {log}")

    def send(self, case: Case, timeout: float) -> None:
        self.case = case
        self.deadline = time.monotonic() + timeout
        self.proc.stdin.write((json.dumps({"args": case.args}) + "\n").encode())
        self.proc.stdin.flush()

    def read_line(self, deadline: float) -> dict | str:
        """A reply, "eof" when the worker died, or "timeout"."""
        sel = selectors.DefaultSelector()
        sel.register(self.fd, selectors.EVENT_READ)
        try:
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    return "timeout"
                if not sel.select(left):
                    continue
                chunk = os.read(self.fd, 1 << 20)
                if not chunk:
                    return "eof"
                self.buf += chunk
        finally:
            sel.close()
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def pump(self) -> dict | str | None:
        """Non-blocking: a reply, "eof", or None (nothing complete yet)."""
        try:
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                return "eof" if b"\n" not in self.buf else self._take()
            self.buf += chunk
        except BlockingIOError:
            pass
        return self._take() if b"\n" in self.buf else None

    def _take(self) -> dict:
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def kill(self) -> int | None:
        """End this worker and the processes it started (its own process group)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rc = None
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self.log_fh.close()
        return rc

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


def plan(cases: int, kinds: Iterable[str] = KINDS) -> list[tuple[str, int]]:
    """``cases`` (kind, index) pairs spread evenly over ``kinds``, interleaved."""
    kinds = list(kinds)
    per = {k: cases // len(kinds) + (1 if i < cases % len(kinds) else 0) for i, k in enumerate(kinds)}
    out = []
    for i in range(max(per.values(), default=0)):
        out += [(k, i) for k in kinds if i < per[k]]
    return out


def run_fuzz(
    seeds: dict[str, Any],
    todo: list[tuple[str, int] | Case],
    seed: int = 0,
    workers: int = 2,
    timeout_s: float = 180.0,
    work: str | Path | None = None,
    keep: bool = False,
    progress: Callable[[str], None] | None = None,
    every: int = 50,
) -> FuzzResult:
    """Run the cases ``todo`` ((kind, index) pairs, or ready-made :class:`Case` objects) over
    ``workers`` worker processes; return counts and findings."""
    say = progress or (lambda _m: None)
    work = Path(work or tempfile.mkdtemp(prefix="edgekit-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    kinds = {t.kind if isinstance(t, Case) else t[0] for t in todo}
    counts: dict[str, collections.Counter] = {k: collections.Counter() for k in [*KINDS, *sorted(kinds)] if k in kinds}
    errors: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    findings: list[Finding] = []
    queue = collections.deque(todo)
    pool: list[_Worker] = []
    t0 = time.perf_counter()
    done = 0
    n_workers = max(1, min(workers, len(todo)))
    log_dir = work / "logs"
    log_dir.mkdir(exist_ok=True)
    spawned = 0
    slow: list[tuple[float, str, str, str]] = []

    def spawn() -> _Worker:
        nonlocal spawned
        spawned += 1
        return _Worker(log_dir / f"worker-{spawned}.log", start_timeout=300)

    def record(case: Case, outcome: str, detail: str = "", reply: dict | None = None, seconds: float = 0.0) -> None:
        nonlocal done
        done += 1
        slow.append((seconds, case.name, outcome, case.mutation))
        slow.sort(reverse=True)
        del slow[5:]
        counts[case.kind][outcome] += 1
        if outcome == "clean" and reply is not None:
            last = [ln for ln in reply["stderr"].splitlines() if ln.strip()][-1]
            errors[case.kind][_normalise_error(last)] += 1
        if outcome in FINDINGS:
            findings.append(Finding(case, outcome, detail))
        if not keep and outcome not in FINDINGS:
            shutil.rmtree(case.folder, ignore_errors=True)
        if done % every == 0 or done == len(todo):
            tot = collections.Counter()
            for c in counts.values():
                tot.update(c)
            rate = done / (time.perf_counter() - t0)
            say(f"[fuzz] {done}/{len(todo)} cases ({rate:.1f}/s): " +
                ", ".join(f"{k} {tot[k]}" for k in OUTCOMES if tot[k] or k in ("clean", "success")))

    try:
        for _ in range(n_workers):
            pool.append(spawn())
        idle = list(pool)
        busy: list[_Worker] = []
        while queue or busy:
            while idle and queue:
                w = idle.pop()
                item = queue.popleft()
                case = item if isinstance(item, Case) else build_case(item[0], item[1], seed, seeds, work / "cases")
                w.send(case, timeout_s)
                busy.append(w)
            sel = selectors.DefaultSelector()
            for w in busy:
                sel.register(w.fd, selectors.EVENT_READ, w)
            wait = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            sel.select(wait)
            sel.close()
            for w in list(busy):
                reply = w.pump()
                case = w.case
                if isinstance(reply, dict):
                    outcome = classify(reply)
                    detail = ""
                    if outcome in FINDINGS:
                        detail = (f"exit code {reply['exit_code']}\n--- stdout ---\n{reply['stdout'][-3000:]}\n"
                                  f"--- stderr ---\n{reply['stderr'][-3000:]}\n"
                                  + (f"--- exception ---\n{reply['exception'][-6000:]}" if reply["exception"] else ""))
                    record(case, outcome, detail, reply, reply.get("seconds", 0.0))
                    busy.remove(w)
                    idle.append(w)
                    continue
                if reply == "eof" or w.proc.poll() is not None:
                    rc = w.kill()
                    why = f"signal {-rc}" if rc is not None and rc < 0 else f"exit code {rc}"
                    record(case, "crash", f"the worker died ({why}) on this case\n{w.log_tail()}",
                           seconds=time.monotonic() - w.deadline + timeout_s)
                elif time.monotonic() > w.deadline:
                    w.kill()
                    record(case, "hang", f"no answer within {timeout_s:.0f}s; the worker was killed", seconds=timeout_s)
                else:
                    continue
                busy.remove(w)
                pool.remove(w)
                if queue or busy:
                    nw = spawn()
                    pool.append(nw)
                    idle.append(nw)
    finally:
        for w in pool:
            w.close()
        if not keep:
            shutil.rmtree(work / "cases", ignore_errors=True)
    import resource

    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # workers and the probes they waited for
    return FuzzResult(counts, findings, dict(errors), time.perf_counter() - t0, len(todo), slow, rss_kb / 1024)


def _normalise_error(line: str) -> str:
    import re

    line = re.sub(r"'[^']*/(fuzz|edgekit-fuzz)[^']*'", "'<file>'", line)
    line = re.sub(r"\d+", "N", line)
    return line[:110]


def main(argv: list[str]) -> None:
    if argv[:1] == ["worker"]:
        worker_main()
    elif argv[:1] == ["seeds"] and len(argv) == 2:
        make_seeds(argv[1])
    else:
        sys.exit("usage: python -m tests.fuzz.engine seeds DIR | worker")


if __name__ == "__main__":
    main(sys.argv[1:])
