"""Bring your own model, on real MNIST: a Keras 3 CNN as .keras, .h5, SavedModel and NCHW ONNX,
through every export target, each artifact validated against the source's own framework.

A Keras 3 CNN (Conv+BatchNorm, MaxPool, Conv, GlobalAveragePooling, Dropout, Dense) is trained in
a child process without TF_USE_LEGACY_KERAS (as TensorFlow 2.16+ users have it) on the shared
MNIST set's train split, saved as .keras, .h5 and a SavedModel (``model.export``); its NCHW ONNX
twin is tf2onnx's export of the same network with the input transpose removed (what
torch.onnx.export hands over). Every (format, target) cell is one ``export_and_validate``;
float cells must agree 100% with max |diff| <= 1e-4, int8 cells >= 99% agreement and <= 0.5 pt
drop. Then the .keras model goes through PCQAT (tf_keras translation proven on MNIST images)
to tflite-int8, and ``edgekit export model.keras --target tflite-int8`` is timed end to end.

    python benchmarks/own_models.py      # saves benchmarks/results/own_models.md
"""
from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import ROOT, machine, md_table, mnist_spec_or_exit, save  # noqa: E402

import numpy as np  # noqa: E402

CHILD = r'''
import sys
from pathlib import Path
import numpy as np
import keras
from keras import layers

assert keras.__version__.startswith("3."), keras.__version__
out = Path(sys.argv[1])
x, y = np.load(out / "x.npy"), np.load(out / "y.npy")
keras.utils.set_random_seed(0)
inp = keras.Input((28, 28, 1))
h = layers.Conv2D(16, 3, padding="same")(inp)
h = layers.BatchNormalization()(h)
h = layers.ReLU()(h)
h = layers.MaxPooling2D()(h)
h = layers.Conv2D(32, 3, padding="same", activation="relu")(h)
h = layers.GlobalAveragePooling2D()(h)
h = layers.Dropout(0.2)(h)
m = keras.Model(inp, layers.Dense(10, activation="softmax")(h), name="keras3_cnn")
m.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
m.fit(x, y, epochs=int(sys.argv[2]), batch_size=32, verbose=0)
m.save(out / "model.keras")
m.save(out / "model.h5")
m.export(str(out / "saved_model"))
'''
FLOAT = {"tflite", "onnx"}
TARGETS = ["tflite", "tflite-fp16", "tflite-dynamic", "tflite-int8", "edgetpu", "micro", "onnx", "onnx-int8"]


def make_sources(ds, tmp: Path, epochs: int) -> dict[str, Path]:
    import onnx

    from edgekit.export.onnx import keras_to_onnx
    from edgekit.models import load
    from tests.models.onnx_builders import nchw_twin

    np.save(tmp / "x.npy", ds.x_train)
    np.save(tmp / "y.npy", ds.y_train)
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    r = subprocess.run([sys.executable, "-c", CHILD, str(tmp), str(epochs)], env=env, capture_output=True, text=True,
                       timeout=1800)
    if r.returncode != 0:
        sys.exit(f"training the Keras 3 model failed: {r.stderr[-2000:]}")
    h = load(tmp / "model.keras", sample=ds.x_train[:64])  # the proven tf_keras translation
    onnx.save(nchw_twin(keras_to_onnx(h.model, (28, 28, 1))), tmp / "model_nchw.onnx")
    return {"Keras 3 .keras": tmp / "model.keras", "Keras 3 .h5": tmp / "model.h5",
            "SavedModel": tmp / "saved_model", "ONNX NCHW": tmp / "model_nchw.onnx"}


def cell(handle, ds, target: str, out: Path) -> dict:
    from edgekit.errors import EdgekitError, ValidationError
    from edgekit.validate import ValidateConfig, export_and_validate

    t0 = time.perf_counter()
    try:
        res = export_and_validate(handle, ds, [target], out, force=True,
                                  validate_config=ValidateConfig(max_diff=1e-4, runs=20, probe=False))
        row = res.validation.targets[target]
    except ValidationError as e:
        v = getattr(e, "result", None)
        row = v.validation.targets[target] if v is not None and v.validation is not None else {"status": str(e)}
    except EdgekitError as e:
        return {"status": f"not possible: {e}", "seconds": time.perf_counter() - t0}
    row = dict(row)
    row["seconds"] = time.perf_counter() - t0
    if "agreement_pct" in row:
        if target in FLOAT:
            ok = row["agreement_pct"] == 100.0 and row["max_abs_diff"] <= 1e-4
        else:
            ok = row["agreement_pct"] >= 99.0 and row["accuracy_drop_pt"] <= 0.5
        row["meets"] = "yes" if ok else "NO"
    return row


def main() -> None:
    from edgekit.data import load_dataset
    from edgekit.models import load

    epochs = int(os.environ.get("EDGEKIT_BENCH_EPOCHS", "6"))
    spec = mnist_spec_or_exit()
    ds = load_dataset(spec, seed=0)
    tmp = Path(tempfile.mkdtemp(prefix="edgekit-own-models-"))
    sources = make_sources(ds, tmp, epochs)
    rows = []
    for name, path in sources.items():
        t0 = time.perf_counter()
        h = load(path, sample=ds.x_train[:64]) if path.suffix in (".keras", ".h5") else load(path)
        load_s = time.perf_counter() - t0
        for target in TARGETS:
            r = cell(h, ds, target, tmp / "out" / name.replace(" ", "_") / target)
            rows.append({"source": name, "target": target, "status": r.get("status", ""),
                         "meets": r.get("meets", ""), "accuracy": r.get("accuracy", ""),
                         "drop (pt)": r.get("accuracy_drop_pt", ""), "agreement %": r.get("agreement_pct", ""),
                         "max abs diff": r.get("max_abs_diff", ""), "gzip B": r.get("gzip_bytes", ""),
                         "s": round(r["seconds"], 1)})
            print(rows[-1], flush=True)
        rows[-len(TARGETS)]["status"] = f"{rows[-len(TARGETS)]['status']} (load {load_s:.1f} s)"
    pcqat = compress_row(ds, sources["Keras 3 .keras"], tmp)
    wall = cli_wall(spec, sources["Keras 3 .keras"], tmp)
    cols = ["source", "target", "status", "meets", "accuracy", "drop (pt)", "agreement %", "max abs diff", "gzip B",
            "s"]
    text = (f"# Bring your own model: Keras 3 / SavedModel / ONNX sources on real MNIST\n\n{machine()}; "
            f"holdout {len(ds.x_test)} images ({spec.split('/')[-1]}); Keras 3 CNN trained {epochs} epochs on "
            f"{len(ds.x_train)} images in a Keras 3 child process. Each row: `export_and_validate` of one target, "
            f"validated against the source's own framework (Keras 3 predict, the SavedModel signature, "
            f"onnxruntime on the user's file). meets: float 100% agreement and max |diff| <= 1e-4; int8 >= 99% "
            f"agreement and <= 0.5 pt drop.\n\n" + md_table(rows, cols)
            + f"\n## Keras 3 -> PCQAT -> tflite-int8\n\n{pcqat}\n\n## Wall time\n\n{wall}\n")
    print(text)
    print(f"saved {save('own_models.md', text)}")


def compress_row(ds, path: Path, tmp: Path) -> str:
    from edgekit.compress import CompressConfig, compress
    from edgekit.models import load
    from edgekit.validate import export_and_validate

    from edgekit.errors import EdgekitError

    h = load(path, sample=ds.x_train[:64])
    t0 = time.perf_counter()
    try:
        res = compress(h, ds, CompressConfig(prune=0.8, prune_schedule="polynomial", cluster=16, quantize="qat",
                                             skip_layers=()), out=tmp / "pcqat", force=True)
    except EdgekitError as e:
        return f"PCQAT of the Keras 3 model (through its proven tf_keras translation) refused: {e}"
    seconds = time.perf_counter() - t0
    out = export_and_validate(tmp / "pcqat" / "model.keras", ds, ["tflite", "tflite-int8"], tmp / "pcqat_export",
                              force=True)
    base = export_and_validate(h, ds, ["tflite"], tmp / "float_export", force=True)
    fz = len(gzip.compress((tmp / "float_export" / "model_float32.tflite").read_bytes(), 9))
    qz = len(gzip.compress((tmp / "pcqat_export" / "model_int8.tflite").read_bytes(), 9))
    v = out.validation.targets["tflite-int8"]
    ref_acc = base.validation.reference["accuracy"]
    drop = (ref_acc - v["accuracy"]) * 100
    return (f"Keras 3 accuracy {ref_acc:.4f}; PCQAT (80% polynomial prune, 16 clusters, QAT) tflite-int8 accuracy "
            f"{v['accuracy']:.4f} ({drop:+.2f} pt vs the Keras 3 model); gzip {qz:,} B vs float .tflite gzip "
            f"{fz:,} B = **{fz / qz:.1f}x smaller** (target >= 10x at <= 1 pt); compress {seconds:.0f} s "
            f"({res.technique}).")


def cli_wall(spec: str, path: Path, tmp: Path) -> str:
    cmd = [sys.executable, "-m", "edgekit.cli.main", "export", str(path), "--target", "tflite-int8", "--dataset",
           spec, "--out", str(tmp / "cli_int8"), "--force", "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    wall = time.perf_counter() - t0
    status = "validated" if r.returncode == 0 else f"exit {r.returncode}: {(r.stderr or r.stdout)[-300:]}"
    return (f"`edgekit export model.keras --target tflite-int8 --dataset idx:MNIST` (Keras 3 file -> validated "
            f"tflite-int8, a fresh process): **{wall:.1f} s** wall, {status} (target <= 30 s on 2 cores; "
            f"{os.cpu_count()} cores here, shared).")


if __name__ == "__main__":
    main()
