"""Cases of the input kinds: a mutated .npz dataset, a mutated image folder, and an ``exec:`` device
whose replies are mutated (the real runner runs, the device script edits its answer)."""
from __future__ import annotations

import io
import json
import math
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from tests.fuzz.mutators import byte_mutation, mutate_tree, truncate

# each maker returns (mutation, args, must_fail)


def _pick(rng, items: list) -> Any:
    return items[int(rng.integers(len(items)))]


def _evaluate(seeds: dict, spec: str) -> list[str]:
    return ["evaluate", seeds["keras"], "--dataset", spec, "--runs", "5"]


# -- npz ------------------------------------------------------------------------------------------
def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _npz_write(dest: Path, members: dict[str, bytes], compressed: bool) -> None:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)


def npz_member_edit(rng, arrays: dict[str, np.ndarray]) -> tuple[dict[str, bytes], str, bool]:
    """One array of the dataset changed (values, dtype, shape, header) or a member dropped/added;
    and whether the result must be refused."""
    keys = sorted(arrays)
    key = _pick(rng, keys)
    a = arrays[key]
    members = {f"{k}.npy": _npy(v) for k, v in arrays.items()}
    op = str(rng.choice(["nan-images", "labels", "dtype", "shape", "header", "drop", "extra", "object", "empty",
                         "constant", "bytes"]))
    must_fail = False
    if op == "nan-images" and key.startswith("x"):
        v = a.astype(np.float32)
        v.reshape(-1)[: max(1, v.size // int(rng.choice([2, 50, 1000])))] = rng.choice([np.nan, np.inf, -np.inf])
        members[f"{key}.npy"] = _npy(v)
        how, must_fail = f"{key}: non-finite pixels", True
    elif op == "labels" or (op == "nan-images" and key.startswith("y")):
        ykey = key.replace("x", "y", 1)
        v = arrays[ykey].astype(np.float64 if rng.random() < 0.3 else np.int64)
        bad = float(rng.choice([np.nan, -1, 2**31, 10**12, 1e30, 0.5])) if v.dtype.kind == "f" else \
            int(rng.choice([-1, 2**31, 2**62, 10**12]))
        v[int(rng.integers(len(v)))] = bad
        members[f"{ykey}.npy"] = _npy(v)
        how, must_fail = f"{ykey}: label {bad!r} ({v.dtype})", True
    elif op == "dtype":
        dt = str(rng.choice(["float16", "float64", "int8", "int32", "uint16", "bool", "complex64", "U3"]))
        members[f"{key}.npy"] = _npy(a.astype(dt))
        how = f"{key}: dtype {dt}"
    elif op == "shape":
        shapes = [(a.size,), (1, a.size), (*a.shape, 1, 1), a.shape[::-1], (0,) + a.shape[1:]]
        shape = shapes[int(rng.integers(len(shapes)))]
        members[f"{key}.npy"] = _npy(np.resize(a, shape))
        how = f"{key}: shape {shape}"
    elif op == "header":  # the .npy header declares another shape than the data holds
        from numpy.lib import format as npy

        buf = io.BytesIO()
        shape = tuple(int(rng.choice([2**31 - 1, 10**6, 3800, 0, 7])) for _ in range(max(1, a.ndim)))
        npy.write_array_header_1_0(buf, {"descr": a.dtype.str, "fortran_order": False, "shape": shape})
        members[f"{key}.npy"] = buf.getvalue() + a.tobytes()
        how = f"{key}: header shape {shape}"
    elif op == "drop":
        del members[f"{key}.npy"]
        how, must_fail = f"{key}: dropped", True
    elif op == "extra":
        members[f"unknown_{int(rng.integers(10))}.npy"] = _npy(np.zeros(3))
        how = "extra member"
    elif op == "object":
        members[f"{key}.npy"] = _npy(np.array([a, None], dtype=object))
        how, must_fail = f"{key}: object array (pickle)", True
    elif op == "empty":
        members[f"{key}.npy"] = _npy(a[:0])
        how, must_fail = f"{key}: zero items", True
    elif op == "constant" and key.startswith("x"):
        members[f"{key}.npy"] = _npy(np.full_like(a, int(rng.integers(256))))
        how, must_fail = f"{key}: constant images", True
    else:
        data, how = byte_mutation(rng, members[f"{key}.npy"])
        members[f"{key}.npy"] = data
        how = f"{key}.npy: {how}"
    return members, how, must_fail


def case_npz(rng, seeds, folder: Path):
    src = Path(_pick(rng, seeds["npz"]))
    dest = folder / "data.npz"
    if rng.random() < 0.35:  # the zip container itself
        data, how = byte_mutation(rng, src.read_bytes())
        dest.write_bytes(data)
    else:
        with np.load(src) as z:
            arrays = {k: z[k] for k in z.files}
        members, how, must_fail = npz_member_edit(rng, arrays)
        _npz_write(dest, members, compressed=rng.random() < 0.5)
        return f"{src.name}: {how}", _evaluate(seeds, f"npz:{dest}"), must_fail
    return f"{src.name}: {how}", _evaluate(seeds, f"npz:{dest}"), False


# -- images -----------------------------------------------------------------------------------------
def case_images(rng, seeds, folder: Path):
    from tests.data.test_bounded_readers import png_header

    src = Path(seeds["images"])
    root = folder / "images"
    shutil.copytree(src, root)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    classes = sorted(p for p in root.iterdir() if p.is_dir())
    f = _pick(rng, files)
    op = str(rng.choice(["bytes", "bytes", "truncate", "huge-header", "non-image", "text-as-png", "symlink-in",
                         "symlink-out", "empty-class", "nested", "zero-bytes", "mode", "one-class"]))
    must_fail = False
    if op == "bytes":
        data, how = byte_mutation(rng, f.read_bytes())
        f.write_bytes(data)
    elif op == "truncate":
        data, how = truncate(rng, f.read_bytes())
        f.write_bytes(data)
    elif op == "huge-header":
        w, h = (int(rng.choice([2**16, 2**20, 2**31 - 1, 100_000])) for _ in range(2))
        f.with_suffix(".png").write_bytes(png_header(w, h))
        if f.suffix != ".png":
            f.unlink()
        how, must_fail = f"png header {w}x{h}", True
    elif op == "non-image":
        (_pick(rng, classes) / str(rng.choice(["README.txt", "notes.md", ".DS_Store", "Thumbs.db"]))).write_bytes(
            bytes(rng.integers(0, 256, 200, dtype=np.uint8)))
        how = "non-image file added"
    elif op == "text-as-png":
        f.write_text("not an image\n")
        how = "text in an image file"
    elif op == "symlink-in":
        (_pick(rng, classes) / "link.png").symlink_to(f)
        how = "symlink to an image inside"
    elif op == "symlink-out":
        target = str(rng.choice(["/dev/zero", "/etc/hostname", str(src / "0")]))
        (_pick(rng, classes) / "link.png").symlink_to(target)
        how, must_fail = f"symlink to {target}", True
    elif op == "empty-class":
        (root / "99").mkdir()
        how = "an empty class folder"
    elif op == "nested":
        (f.parent / "sub").mkdir()
        shutil.copy(f, f.parent / "sub" / f.name)
        how = "a nested folder"
    elif op == "zero-bytes":
        f.write_bytes(b"")
        how = "zero-byte image"
    elif op == "mode":
        from PIL import Image

        mode = str(rng.choice(["RGB", "RGBA", "I;16", "1", "P", "CMYK", "F"]))
        with Image.open(f) as im:
            conv = im.convert(mode)
        out = f.with_suffix(".tiff" if mode in ("F", "I;16") else ".png")
        f.unlink()
        conv.save(out)
        how = f"an image in mode {mode}"
    else:
        for c in classes[1:]:
            shutil.rmtree(c)
        how, must_fail = "one class folder", True
    spec = f"images:{root}"
    if rng.random() < 0.4:
        spec += ",size=28x28,channels=1"
    rel = f.relative_to(root)
    return f"{rel}: {how}", _evaluate(seeds, spec), must_fail


# -- devices ------------------------------------------------------------------------------------------
DEVICE_SCRIPT = r'''"""A fuzz device: a plain Python for the helper commands; for the model run it runs the real
runner, then edits the answer as the case's spec says (tests.fuzz.input_cases.mutate_reply)."""
import json, os, subprocess, sys
spec_path, args = sys.argv[1], sys.argv[2:]
if not args or not args[0].endswith("runner_script.py"):
    os.execv(sys.executable, [sys.executable] + args)
with open(spec_path) as f:
    spec = json.load(f)
request = sys.stdin.buffer.read()
real = subprocess.run([sys.executable] + args, input=request, capture_output=True)
from tests.fuzz.input_cases import mutate_reply
sys.stdout.buffer.write(mutate_reply(spec, real.stdout))
sys.stdout.buffer.flush()
sys.exit(real.returncode)
'''

# spec ops that must make the run fail: an invalid or implausible reply
MUST_FAIL_OPS = {"latency", "latencies", "cpu", "cpu_class", "huge", "outputs_nan", "status", "count", "magic"}


def mutate_reply(spec: dict, reply: bytes) -> bytes:
    """``reply`` (``MAGIC {json}\\n`` + float32 payload + ``END\\n``) edited as ``spec`` says."""
    from edgekit.devices.runner_script import END, MAGIC

    op = spec["op"]
    rng = np.random.default_rng(spec.get("seed", 0))
    if op == "bytes":
        return byte_mutation(rng, reply)[0]
    if op == "huge":
        return reply[:64] + b"x" * spec["bytes"]
    head, sep, rest = reply.partition(b"\n")
    if not head.startswith(MAGIC.encode()) or not sep:
        return reply  # the real runner failed: pass its answer on
    header = json.loads(head[len(MAGIC) + 1:])
    payload = rest[: len(rest) - len(END) - 1] if rest.endswith(END + b"\n") else rest
    magic = MAGIC
    if op == "latency":
        lat = header.get("latencies_us", [])
        if lat:
            lat[spec["index"] % len(lat)] = _value(spec["value"])
    elif op == "latencies":
        header["latencies_us"] = [_value(spec["value"])] * len(header.get("latencies_us", [1]))
    elif op == "cpu":
        header.setdefault("facts", {})["cpu"] = {"class": "arm-neon", "int8_expected_faster": True}
    elif op == "cpu_class":
        header["cpu_class"] = "x86-avx512"
    elif op == "probe":  # a device that lies in its raw probe data: indistinguishable, may pass
        header["probe"] = {"machine": "aarch64", "cpuinfo": "processor : 0\nFeatures : fp asimd\n"}
    elif op == "outputs_nan":
        values = np.frombuffer(payload, "<f4").copy()
        values[: max(1, len(values) // int(spec.get("every", 3)))] = _value(spec["value"])
        payload = values.tobytes()
    elif op == "status":
        header = {"status": "error", "kind": "load", "message": "\x1b[31mfailed\x1b[0m\n" + "x" * spec["bytes"]}
        payload = b""
    elif op == "count":  # one output row fewer than images sent
        shape = header.get("outputs", {}).get("shape", [1])
        row = int(np.prod(shape[1:])) * 4 if len(shape) > 1 else 4
        header["outputs"]["shape"] = [shape[0] - 1, *shape[1:]]
        header["outputs"]["nbytes"] = max(0, header["outputs"]["nbytes"] - row)
        payload = payload[:-row]
    elif op == "magic":
        magic = "EDGEKIT-RUNNER/9"
    elif op == "tree":
        header, _ = mutate_tree(rng, header, ("latencies_us", "outputs", "shape", "nbytes", "facts", "probe",
                                              "status", "machine", "cpuinfo", "cpu_count", "runtime"))
    return (magic + " " + json.dumps(header)).encode() + b"\n" + payload + END + b"\n"


def _value(v: Any) -> Any:
    return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}.get(v, v) if isinstance(v, str) else v


def device_spec(rng, hostile: bool) -> dict:
    """What the fuzz device does to its answer: random edits (``device``) or a targeted lie (``hostile``)."""
    if not hostile:
        op = str(rng.choice(["bytes", "bytes", "tree", "tree", "tree", "none", "probe"]))
        return {"op": op, "seed": int(rng.integers(2**31))}
    op = str(rng.choice(["latency", "latencies", "cpu", "cpu_class", "huge", "outputs_nan", "status", "count",
                         "magic"]))
    spec: dict[str, Any] = {"op": op, "seed": int(rng.integers(2**31))}
    if op == "latency":
        spec.update(index=int(rng.integers(5)), value=str(rng.choice(["nan", "inf", "-inf"])) if rng.random() < 0.5
                    else float(rng.choice([-5.0, 0.0, -1e-9, 1e12])))
    elif op == "latencies":
        spec["value"] = float(rng.choice([0.001, 1e-6, 0.1, 9e6, 5e7]))
    elif op == "huge":
        spec["bytes"] = int(rng.choice([(64 << 20) + 1, 100 << 20]))
    elif op == "outputs_nan":
        spec.update(value=str(rng.choice(["nan", "inf", "-inf"])), every=int(rng.choice([1, 3, 1000])))
    elif op == "status":
        spec["bytes"] = int(rng.choice([10, 100_000]))
    return spec


def device_uri(folder: Path, spec: dict) -> str:
    script = folder / "fuzz_device.py"
    script.write_text(DEVICE_SCRIPT)
    spec_file = folder / "device_spec.json"
    spec_file.write_text(json.dumps(spec))
    return f"exec://{sys.executable} {script} {spec_file}"


def device_args(rng, seeds, folder: Path, uri: str) -> list[str]:
    artifact = _pick(rng, [*seeds["tflite"], *seeds["onnx"]])
    args = ["validate", artifact, "--device", uri, "--device-timeout", "30", "--dataset", "digits", "--limit",
            str(int(rng.choice([50, 200]))), "--runs", "5", "--out", str(folder / "out"), "-q"]
    if rng.random() < 0.3:
        args += ["--reference", seeds["keras"]]
    return args


def case_device(rng, seeds, folder: Path):
    spec = device_spec(rng, hostile=False)
    return f"reply: {json.dumps(spec)}", device_args(rng, seeds, folder, device_uri(folder, spec)), False


# option-like parts a URI carries into ssh/adb argv; {s}: the sentinel folder a ProxyCommand would touch
INJECTED_URIS = [
    "ssh://-oProxyCommand=touch%20{s}%2Fpwned@localhost", "ssh://-oProxyCommand=touch%20{s}%2Fpwned",
    "ssh://%2DoProxyCommand=touch%20{s}%2Fpwned@localhost", "ssh://pi@-oProxyJump=evil",
    "ssh://pi@host?python=-oProxyCommand=touch%20{s}%2Fpwned", "ssh://pi%09x@host", "ssh://pi@ho$t",
    "ssh://pi:secret@host", "ssh://pi@host?pyhton=/usr/bin/python3", "adb://-e", "adb://-sX%20shell",
    "adb://emulator 5554", "exec://python3\x00-c", "ssh://[::1", "ftp://host", "exec://",
    "ssh://pi@host\n-oProxyCommand=touch {s}/pwned",
]


def case_hostile_device(rng, seeds, folder: Path, sentinel: Path):
    if rng.random() < 0.3:
        uri = _pick(rng, INJECTED_URIS)
        uri = uri.replace("{s}", str(sentinel).replace("/", "%2F") if "%20" in uri else str(sentinel))
        return f"uri {uri!r}", device_args(rng, seeds, folder, uri), True
    spec = device_spec(rng, hostile=True)
    return f"reply: {json.dumps(spec)}", device_args(rng, seeds, folder, device_uri(folder, spec)), True
