"""Hostile inputs, one generator family per class of hardening: each case is built to get past one
check (a planted file write, a size or decompression bomb, non-finite values, impossible dimensions,
a special file), so each must end in a clean error (exit 0 is a ``wrong_success``), and a planted
write aims at the case's sentinel folder (anything there afterwards is a ``file_written``).

The builders of the hardening's own tests are reused (tests/models, tests/data); each maker returns
``(mutation, args, must_fail)``.
"""
from __future__ import annotations

import base64
import gzip
import json
import marshal
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from tests.fuzz.common import DATA_OPTS
from tests.fuzz.seeds import PLANTED_PLACEHOLDER, planted_target


def _pick(rng, items: list) -> Any:
    return items[int(rng.integers(len(items)))]


def _model_args(rng, path: Path, folder: Path, extra_inspect: tuple = ()) -> list[str]:
    """inspect (mostly), evaluate or export: every route that loads a model."""
    r = rng.random()
    if r < 0.55:
        return ["inspect", str(path), "--no-targets", *extra_inspect]
    if r < 0.8:
        return ["evaluate", str(path), *DATA_OPTS, "--runs", "3"]
    return ["export", str(path), "--target", str(rng.choice(["tflite", "onnx"])), "--no-validate", "--out",
            str(folder / "out"), *DATA_OPTS, "-q"]


# -- Keras (tf_keras and Keras 3) -----------------------------------------------------------------------
TFOP_FUNCTIONS = ["io.write_file", "io.gfile.copy", "py_function", "numpy_function", "print", "compat.v1.py_func",
                  "raw_ops.WriteFile", "summary.scalar", "debugging.assert_equal", "data.Dataset.from_tensors"]


def _zip_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _lambda_config(target: str) -> dict:
    """Keras 3's serialisation of ``lambda x: (write target, x)[1]`` (marshal'd code, as func_dump writes it)."""
    fn = eval(f"lambda x: (__import__('pathlib').Path({target!r}).write_text('pwned'), x)[1]")  # noqa: S307
    code = base64.encodebytes(marshal.dumps(fn.__code__)).decode("ascii")
    return {"module": "keras.layers", "class_name": "Lambda", "registered_name": None, "config": {
        "name": "innocent_looking", "trainable": True, "dtype": "float32",
        "function": {"class_name": "__lambda__", "config": {"code": code, "defaults": None, "closure": None}},
        "arguments": {}}}


def _keras3_insert(config: dict, layer: dict) -> dict:
    """``layer`` inserted after the input of a Keras 3 functional config (the next layer reads it)."""
    layers = config["config"]["layers"]
    first = layers[0]["name"]
    layer = dict(layer, name=layer["config"]["name"], inbound_nodes=[{"args": [{"class_name": "__keras_tensor__",
                 "config": {"shape": [None, 28, 28, 1], "dtype": "float32", "keras_history": [first, 0, 0]}}],
                 "kwargs": {}}])
    nxt = layers[1]
    text = json.dumps(nxt["inbound_nodes"]).replace(f'"keras_history": ["{first}"', f'"keras_history": '
                                                                                   f'["{layer["name"]}"')
    nxt["inbound_nodes"] = json.loads(text)
    layers.insert(1, layer)
    return config


def case_hostile_keras(rng, seeds, folder: Path, sentinel: Path):
    from tests.models.test_safe_loading import (
        K3_META, TFK_META, _dense, _dense_bomb, _plant_write_file, _weights_bomb, _write_keras,
    )

    target = str(sentinel / "pwned")
    op = str(rng.choice(["tfop-write", "tfop-write", "tfop-other", "module", "keras3-lambda", "keras3-module",
                         "nonfinite", "config-bomb", "hidden-bomb", "weights-bomb", "asset-bomb", "liar-member",
                         "special-file"]))
    if op in ("tfop-write", "tfop-other"):
        src = Path(_pick(rng, seeds["tfop"]))
        fn = "io.write_file" if op == "tfop-write" else str(_pick(rng, TFOP_FUNCTIONS))

        def plant(config: dict) -> dict:
            config = _plant_write_file(config, Path(target))
            for layer in config["config"]["layers"]:
                if layer["class_name"] == "TFOpLambda":
                    layer["config"]["function"] = fn
            return config

        dest = folder / f"evil{src.suffix}"
        if src.suffix == ".keras":
            members = _zip_members(src)
            _write_keras(dest, plant(json.loads(members["config.json"])),
                         extra={"model.weights.h5": members["model.weights.h5"]})
        else:
            import h5py

            dest.write_bytes(src.read_bytes())
            with h5py.File(dest, "r+") as f:
                f.attrs["model_config"] = json.dumps(plant(json.loads(f.attrs["model_config"])))
        return f"{src.name}: TFOpLambda tf.{fn} -> sentinel", _model_args(rng, dest, folder), True
    if op == "module":  # tf_keras imports the module a config names: a planted module would run
        (folder / "innocent_models.py").write_text(f"open({target!r}, 'w').write('ran')\n")
        members = _zip_members(Path(seeds["keras"]))
        config = json.loads(members["config.json"])
        config.update(module="innocent_models", class_name="Net", registered_name="Net")
        dest = _write_keras(folder / "module.keras", config, TFK_META,
                            {"model.weights.h5": members["model.weights.h5"]})
        return "model.keras: class from module innocent_models", _model_args(rng, dest, folder), True
    if op in ("keras3-lambda", "keras3-module"):
        members = _zip_members(Path(seeds["keras3"][0]))
        config = json.loads(members["config.json"])
        if op == "keras3-lambda":
            config = _keras3_insert(config, _lambda_config(target))
            how = "Lambda writing the sentinel"
        else:
            layer = next(ly for ly in config["config"]["layers"] if ly["class_name"] == "Dense")
            layer["module"] = str(rng.choice(["innocent_layers", "os", "subprocess", "builtins"]))
            layer["registered_name"] = f"{layer['module']}>Dense"
            how = f"Dense from module {layer['module']}"
        dest = _write_keras(folder / "k3.keras", config, K3_META, {n: b for n, b in members.items()
                                                                   if n not in ("config.json", "metadata.json")})
        return f"cnn.keras (Keras 3): {how}", _model_args(rng, dest, folder), True
    if op == "nonfinite":
        src = Path(_pick(rng, [seeds["keras"], *seeds["keras3"]]))
        dest = folder / src.name
        dest.write_bytes(src.read_bytes())
        value = float(rng.choice([np.nan, np.inf, -np.inf]))
        _poison_h5(dest, rng, value)
        return f"{src.name}: {value} in a kernel", _model_args(rng, dest, folder), True
    if op == "config-bomb":
        config = _dense_bomb([_dense(1), _dense(2)])
        if rng.random() < 0.5:
            dest = _write_keras(folder / "config_bomb.keras", config)
        else:
            import h5py

            dest = folder / "config_bomb.h5"
            with h5py.File(dest, "w") as f:
                f.attrs["keras_version"], f.attrs["backend"] = "2.21.0", "tensorflow"
                f.attrs["model_config"] = json.dumps(config)
        return f"{dest.name}: 3.6e9 parameters declared", _model_args(rng, dest, folder), True
    if op == "hidden-bomb":
        hidden = [_dense(1), {"module": "tf_keras.src.layers.core.tf_op_layer", "class_name": "TFOpLambda",
                              "config": {"name": "op", "trainable": True, "function": "math.abs"}}, _dense(2)]
        dest = _write_keras(folder / "hidden_bomb.keras", _dense_bomb(hidden))
        return "hidden_bomb.keras: a TFOpLambda hides a 3.6e9 kernel", _model_args(rng, dest, folder), True
    if op == "weights-bomb":
        members = _zip_members(Path(seeds["keras3"][0]))
        weights = folder / "model.weights.h5"
        _weights_bomb(weights)
        dest = _write_keras(folder / "weights_bomb.keras", json.loads(members["config.json"]), K3_META,
                            {"model.weights.h5": weights.read_bytes()})
        weights.unlink()
        return "weights_bomb.keras: a 60000x60000 gzip dataset", _model_args(rng, dest, folder), True
    if op in ("asset-bomb", "liar-member"):
        members = _zip_members(Path(seeds["keras3"][0]))
        extra = {"model.weights.h5": members["model.weights.h5"]}
        if op == "asset-bomb":
            extra["assets/table.bin"] = bytes(int(rng.choice([80, 300])) << 20)
        else:
            extra["assets/huge.bin"] = b"\0" * 1024
        dest = _write_keras(folder / f"{op}.keras", json.loads(members["config.json"]), K3_META, extra)
        if op == "liar-member":
            data = bytearray(dest.read_bytes())
            central = data.rindex(b"PK\x01\x02")
            data[central + 24:central + 28] = int(rng.choice([0xFFFF0000, 0x7FFFFFFF, 2**31])).to_bytes(4, "little")
            dest.write_bytes(bytes(data))
        return f"{dest.name}: zip member bomb", _model_args(rng, dest, folder), True
    # special files where a model file is expected
    kind = str(rng.choice(["fifo", "dev-zero", "dev-null", "dir", "loop"]))
    dest = folder / str(rng.choice(["model.keras", "model.h5", "model.onnx", "model.tflite"]))
    if kind == "fifo":
        os.mkfifo(dest)
    elif kind == "dev-zero":
        dest.symlink_to("/dev/zero")
    elif kind == "dev-null":
        dest.symlink_to("/dev/null")
    elif kind == "dir":
        dest.mkdir()
    else:
        dest.symlink_to(dest)
    args = (_model_args(rng, dest, folder) if dest.suffix in (".keras", ".h5", ".onnx") else
            ["validate", str(dest), "--reference", seeds["keras"], *DATA_OPTS, "--runs", "3", "--out",
             str(folder / "out"), "-q"])
    return f"{dest.name}: {kind}", args, True


def _poison_h5(path: Path, rng, value: float) -> None:
    """Set a third of one kernel of a Keras file (.keras zip or .h5) to ``value``."""
    import io

    import h5py

    def poison(f) -> None:
        names: list[str] = []
        f.visit(lambda n: names.append(n) if isinstance(f[n], h5py.Dataset) and f[n].size > 4 else None)
        ds = f[sorted(names)[int(rng.integers(len(names)))]]
        v = np.asarray(ds[()], np.float32)
        v.reshape(-1)[: max(1, v.size // 3)] = value
        ds[...] = v

    if path.suffix == ".h5":
        with h5py.File(path, "r+") as f:
            poison(f)
        return
    members = _zip_members(path)
    buf = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buf, "r+") as f:
        poison(f)
    members["model.weights.h5"] = buf.getvalue()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n, b in members.items():
            z.writestr(n, b)


# -- SavedModel ---------------------------------------------------------------------------------------
def case_hostile_savedmodel(rng, seeds, folder: Path, sentinel: Path):
    route = str(_pick(rng, sorted(seeds["planted"])))
    dest = folder / "savedmodel"
    shutil.copytree(seeds["planted"][route], dest)
    old, new = PLANTED_PLACEHOLDER.encode(), planted_target(sentinel).encode()
    for f in dest.rglob("*"):
        if f.is_file() and old in (data := f.read_bytes()):
            f.write_bytes(data.replace(old, new))
    how = f"planted {route} -> sentinel"
    if rng.random() < 0.25:  # one more edit of the graph around the planted op
        from tests.fuzz.format_mutators import savedmodel_semantic

        pb = dest / "saved_model.pb"
        try:
            data, more = savedmodel_semantic(rng, pb.read_bytes())
            pb.write_bytes(data)
            how += f" + {more}"
        except Exception as e:
            how += f" (edit skipped: {type(e).__name__})"
    extra = ("--signature", "serving_default") if rng.random() < 0.2 else ()
    return how, _model_args(rng, dest, folder, extra), True


# -- ONNX and artifacts -------------------------------------------------------------------------------
def case_hostile_onnx(rng, seeds, folder: Path, sentinel: Path):
    import onnx
    from onnx import helper, numpy_helper

    from tests.models.onnx_builders import tiny_cnn
    from tests.models.test_onnx_hostile import _poisoned

    op = str(rng.choice(["nonfinite", "nonfinite", "constant", "dims", "dims", "fixed-batch", "low-opset",
                         "chance"]))
    dest = folder / "model.onnx"
    if op == "nonfinite":
        name = str(rng.choice(["w1", "w2", "b1", "b2", "bf", "wf"]))
        value = float(rng.choice([np.nan, np.inf, -np.inf]))
        try:
            proto = _poisoned(name, value, count=int(rng.choice([1, 3, 100])))
        except StopIteration:
            proto = _poisoned("w1", value)
            name = "w1"
        onnx.save(proto, str(dest))
        cmd = _onnx_cmd(rng, dest, folder)
        return f"{value} in initializer {name}", cmd, True
    if op == "constant":
        proto = tiny_cnn(size=28, classes=10)
        value = numpy_helper.from_array(np.array([1.0, float(rng.choice([np.nan, np.inf]))], np.float32), "k")
        proto.graph.node.insert(0, helper.make_node("Constant", [], ["k"], value=value))
        onnx.save(proto, str(dest))
        return "non-finite Constant node", _onnx_cmd(rng, dest, folder), True
    if op == "dims":
        proto = tiny_cnn(size=28, classes=10)
        where = str(rng.choice(["input", "output"]))
        v = (proto.graph.input if where == "input" else proto.graph.output)[0]
        dims = v.type.tensor_type.shape.dim
        d = int(rng.integers(len(dims)))
        value = int(rng.choice([0, -1, -4, -(2**31)]))
        dims[d].dim_value = value
        onnx.save(proto, str(dest))
        return f"graph {where} dim {d} = {value}", _onnx_cmd(rng, dest, folder), True
    if op == "fixed-batch":  # legitimate: must convert (or refuse cleanly), never crash
        batch = int(rng.choice([1, 4, 32]))
        onnx.save(tiny_cnn(size=28, classes=10, batch=batch), str(dest))
        return f"fixed batch {batch}", _onnx_cmd(rng, dest, folder, int8=True), False
    if op == "low-opset":
        proto = tiny_cnn(size=28, classes=10)
        version = int(rng.choice([9, 10, 11, 12]))
        try:
            from onnx import version_converter

            proto = version_converter.convert_version(proto, version)
            how = f"opset {version} (converted)"
        except Exception as e:
            proto.opset_import[0].version = version
            how = f"opset {version} (set; {type(e).__name__})"
        onnx.save(proto, str(dest))
        return how, _onnx_cmd(rng, dest, folder, int8=True), False
    # an artifact validated against a model it did not come from: agreement near chance must fail
    artifact = _pick(rng, [seeds["tflite"][1], seeds["onnx"][1]])
    args = ["validate", artifact, "--reference", seeds["other_keras"], *DATA_OPTS, "--runs", "3", "--out",
            str(folder / "out"), "-q"]
    return f"{Path(artifact).name} against another model (chance agreement)", args, True


def _onnx_cmd(rng, path: Path, folder: Path, int8: bool = False) -> list[str]:
    if rng.random() < (0.7 if int8 else 0.4):
        target = str(rng.choice(["onnx-int8", "tflite-int8", "tflite"] if int8 else
                                ["onnx-int8", "tflite-int8", "tflite", "onnx"]))
        return ["export", str(path), "--target", target, "--out", str(folder / "out"), *DATA_OPTS, "--runs", "3",
                "-q"]
    return ["inspect", str(path), "--no-targets"]


# -- datasets -------------------------------------------------------------------------------------------
def case_hostile_data(rng, seeds, folder: Path, sentinel: Path):
    from tests.data.test_bounded_readers import (
        deflate_zeros, idx_bytes, labels_member, npy_header, png_header, zip_members,
    )

    op = str(rng.choice(["npz-bomb", "npz-ratio", "idx-gzip-bomb", "idx-gzip-tail", "fifo", "dev-zero",
                         "symlink-out", "nan-images", "labels", "png-bomb", "md5-fifo"]))
    spec_kind = "npz"
    data = folder / "data.npz"
    idx = folder / "idx"
    if op == "npz-bomb":  # a .npy header declaring gigabytes over a few bytes of deflate
        shape = (int(rng.choice([3800, 60000])), 1000, 1000)
        x = deflate_zeros(npy_header(shape), 1)
        data.write_bytes(zip_members(("x.npy", 8, x, min(2**32 - 1, len(npy_header(shape)) + shape[0] * 10**6)),
                                     labels_member(40)))
        how = f"npz member x declares {shape}"
    elif op == "npz-ratio":
        x = deflate_zeros(npy_header((40, 8, 8)), 1)
        data.write_bytes(zip_members(("x.npy", 8, x, 2**32 - 1), labels_member(40)))
        how = "npz member declares more than deflate expands to"
    elif op in ("idx-gzip-bomb", "idx-gzip-tail"):
        spec_kind = "idx"
        idx.mkdir()
        n = 3072 if op == "idx-gzip-bomb" else 10
        header = bytes([0, 0, 0x08, 3]) + b"".join(v.to_bytes(4, "big") for v in (n, 1024, 1024))
        mib = gzip.compress(bytes(1 << 20), compresslevel=9, mtime=0)
        body = mib * (int(rng.choice([64, 512])) if op == "idx-gzip-bomb" else 200)
        (idx / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(header, mtime=0) + body)
        (idx / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(10, np.uint8)))
        how = f"gzip IDX declaring ({n}, 1024, 1024)" + (" with data past its size" if n == 10 else "")
    elif op in ("fifo", "dev-zero", "md5-fifo"):
        where = str(rng.choice(["npz", "idx", "images"])) if op != "md5-fifo" else "idx"
        spec_kind = where
        if where == "npz":
            special = data
        elif where == "idx":
            shutil.copytree(seeds["idx"], idx)
            special = idx / ("MD5SUMS" if op == "md5-fifo" else "t10k-images-idx3-ubyte.gz")
            special.unlink(missing_ok=True)
        else:
            shutil.copytree(seeds["images"], folder / "images")
            special = folder / "images" / "3" / "special.png"
        if op == "dev-zero":
            special.symlink_to(str(rng.choice(["/dev/zero", "/dev/urandom"])))
        else:
            os.mkfifo(special)
        how = f"{special.relative_to(folder)}: {op}"
    elif op == "symlink-out":
        spec_kind = str(rng.choice(["idx", "images"]))
        if spec_kind == "idx":
            shutil.copytree(seeds["idx"], idx)
            (idx / "t10k-labels-idx1-ubyte.gz").unlink()
            (idx / "t10k-labels-idx1-ubyte.gz").symlink_to(Path(seeds["idx"]) / "train-labels-idx1-ubyte.gz")
            how = "IDX labels: a symlink out of the folder"
        else:
            shutil.copytree(seeds["images"], folder / "images")
            (folder / "images" / "1" / "out.png").symlink_to(next(Path(seeds["images"], "2").iterdir()))
            how = "image: a symlink out of the folder"
    elif op in ("nan-images", "labels"):
        with np.load(seeds["npz"][0]) as z:
            x, y = z["x"].astype(np.float32), z["y"]
        if op == "nan-images":
            x.reshape(-1)[: int(rng.choice([1, 100, x.size]))] = float(rng.choice([np.nan, np.inf, -np.inf]))
            how = "non-finite pixels"
        else:
            bad = int(rng.choice([-1, 100_000, 2**31, 2**62]))
            y = y.astype(np.int64)
            as_idx = rng.random() < 0.5 and bad in (-1, 100_000)  # IDX labels are int32
            y[int(rng.integers(len(y)))] = bad
            how = f"label {bad}"
        if op == "nan-images":
            as_idx = rng.random() < 0.5
        if not as_idx:
            np.savez(data, x=x, y=y)
        else:  # the same values through IDX (float32 images: dtype 0x0D)
            spec_kind = "idx"
            idx.mkdir()
            (idx / "t10k-images-idx3-ubyte").write_bytes(bytes([0, 0, 0x0D, 3]) + b"".join(
                int(d).to_bytes(4, "big") for d in x.shape[:3]) + x.astype(">f4").tobytes())
            lab = y.astype(">i4")
            (idx / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 0x0C, 1]) + len(y).to_bytes(4, "big")
                                                         + lab.tobytes())
            how += " (IDX)"
    else:  # a PNG declaring gigapixels
        spec_kind = "images"
        shutil.copytree(seeds["images"], folder / "images")
        w = int(rng.choice([2**16, 100_000, 2**31 - 1]))
        (folder / "images" / "5" / "bomb.png").write_bytes(png_header(w, w))
        how = f"png declaring {w}x{w}"
    spec = {"npz": f"npz:{data}", "idx": f"idx:{idx}", "images": f"images:{folder / 'images'}"}[spec_kind]
    args = ["evaluate", seeds["keras"], "--dataset", spec, "--runs", "3"]
    if rng.random() < 0.2:
        args = ["train", "--model", "mlp", "--dataset", spec, "--epochs", "1", "--out", str(folder / "out"), "-q"]
    return how, args, True
