"""Mutations of any file: random values, byte-level edits, YAML/JSON tree edits and text edits
(format-aware ones: tests/fuzz/format_mutators.py)."""
from __future__ import annotations

import copy
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
