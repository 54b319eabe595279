"""Hand-made but realistic run folders: real files, a manifest written by ``update_manifest``.

The numbers mirror a reference-CNN run on the embedded digits (train, compress, export, validate),
so gate and report tests exercise the same manifest shape the pipeline writes, without
TensorFlow.
"""
from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

from edgekit.artifacts import Artifact, write_bytes, write_json
from edgekit.manifest import update_manifest

# target -> (file, bytes, accuracy, agreement %, p50 ms, p90 ms, max_abs_diff)
TARGETS: dict[str, tuple[str, int, float, float, float, float, float]] = {
    "tflite": ("model.tflite", 120_400, 0.9750, 100.0, 0.112, 0.131, 2.1e-6),
    "tflite-int8": ("model_int8.tflite", 36_200, 0.9722, 99.44, 0.041, 0.049, 0.0117),
    "onnx": ("model.onnx", 121_300, 0.9750, 100.0, 0.087, 0.102, 3.4e-6),
}
REFERENCE_ACCURACY = 0.9750

HISTORY = [
    {"epoch": e, "loss": l, "accuracy": a, "val_loss": vl, "val_accuracy": va, "lr": 0.001,
     "seconds": 1.4 - 0.05 * e, "images_per_second": 900.0 + 20 * e}
    for e, (l, a, vl, va) in enumerate([
        (1.62, 0.52, 0.71, 0.80), (0.48, 0.86, 0.33, 0.91), (0.27, 0.92, 0.21, 0.94),
        (0.18, 0.95, 0.15, 0.96), (0.13, 0.96, 0.12, 0.97)], start=1)
]

COMPRESS_STAGES = [
    {"stage": "baseline", "accuracy": 0.9750, "accuracy_drop_pt": 0.0, "sparsity": 0.0, "nonzero_params": 93_322,
     "max_unique_values": 90_411, "keras_bytes": 1_151_000, "keras_gzip_bytes": 1_050_000,
     "tflite_int8_bytes": 101_900, "tflite_int8_gzip_bytes": 86_100, "seconds": 0.0},
    {"stage": "prune", "accuracy": 0.9722, "accuracy_drop_pt": 0.28, "sparsity": 0.75, "nonzero_params": 23_480,
     "max_unique_values": 23_120, "keras_bytes": 1_151_000, "keras_gzip_bytes": 310_000,
     "tflite_int8_bytes": 101_900, "tflite_int8_gzip_bytes": 38_300, "seconds": 6.2},
    {"stage": "cluster", "accuracy": 0.9694, "accuracy_drop_pt": 0.56, "sparsity": 0.75, "nonzero_params": 23_480,
     "max_unique_values": 16, "keras_bytes": 1_151_000, "keras_gzip_bytes": 121_000,
     "tflite_int8_bytes": 101_900, "tflite_int8_gzip_bytes": 24_700, "seconds": 4.9},
    {"stage": "qat", "accuracy": 0.9722, "accuracy_drop_pt": 0.28, "sparsity": 0.74, "nonzero_params": 24_015,
     "max_unique_values": 16, "keras_bytes": 1_163_000, "keras_gzip_bytes": 130_000,
     "tflite_int8_bytes": 36_200, "tflite_int8_gzip_bytes": 21_900, "seconds": 7.5},
]


def _blob(n: int, seed: int, compressible: float = 0.4) -> bytes:
    """``n`` bytes, partly repetitive so gzip gives a realistic ratio."""
    rng = random.Random(seed)
    k = int(n * compressible)
    return rng.randbytes(n - k) + bytes(k)


def _png(path: Path) -> None:
    """A small real PNG (matplotlib) so the report can inline it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([r["epoch"] for r in HISTORY], [r["val_accuracy"] for r in HISTORY])
    fig.savefig(path, dpi=40)
    plt.close(fig)


def make_run(root: str | Path, *, targets: dict[str, dict[str, Any]] | None = None,
             stages: tuple[str, ...] = ("train", "compress", "export", "validate"),
             size_scale: float = 1.0, seed: int = 0) -> Path:
    """Write a run folder under ``root`` and return the path of its ``manifest.json``.

    ``targets`` overrides per-target validate metrics (e.g. ``{"tflite-int8": {"accuracy": 0.9}}``);
    ``size_scale`` scales every exported file (for baseline growth tests).
    """
    out = Path(root)
    out.mkdir(parents=True, exist_ok=True)
    dataset = {"spec": "digits", "input_shape": [28, 28, 1], "num_classes": 10,
               "sizes": {"train": 1293, "val": 145, "test": 359}, "sha256": "ab" * 32}
    if "train" in stages:
        write_bytes(out / "model.keras", _blob(30_000, seed))
        write_json(out / "history.json", HISTORY)
        _png(out / "curves.png")
        arts = [Artifact.from_file(out / n, k, out) for n, k in
                (("model.keras", "keras"), ("history.json", "history"), ("curves.png", "plot"))]
        metrics = {"test_accuracy": REFERENCE_ACCURACY, "test_loss": 0.09, "final_val_accuracy": 0.97,
                   "epochs_run": len(HISTORY), "train_seconds": 6.3, "images_per_second": 980.0,
                   "params": 93_322, "macs": 2_790_000}
        update_manifest(out, "train", config={"model": "cnn", "optimizer": "adam", "lr": 0.001, "epochs": 5,
                                              "batch_size": 64, "seed": 0},
                        metrics=metrics, artifacts=arts, dataset=dataset)
    if "compress" in stages:
        write_bytes(out / "compressed.keras", _blob(12_000, seed + 1))
        metrics = {"input": {"path": "model.keras", "accuracy": REFERENCE_ACCURACY},
                   "stages": copy.deepcopy(COMPRESS_STAGES), "final": copy.deepcopy(COMPRESS_STAGES[-1]),
                   "per_layer": [{"layer": "conv1", "params": 320, "sparsity": 0.5, "unique_values": 16},
                                 {"layer": "dense1", "params": 73_792, "sparsity": 0.8, "unique_values": 16}]}
        update_manifest(out, "compress", config={"stages": ["prune", "cluster", "qat"], "sparsity": 0.75},
                        metrics=metrics, artifacts=[Artifact.from_file(out / "compressed.keras", "keras", out)])
    if "export" in stages or "validate" in stages:
        arts = []
        for i, (name, (fname, size, *_)) in enumerate(TARGETS.items()):
            write_bytes(out / fname, _blob(int(size * size_scale), seed + 10 + i))
            arts.append({**Artifact.from_file(out / fname, "onnx" if name == "onnx" else "tflite", out).to_dict(),
                         "target": name})
        if "export" in stages:
            em = {}
            for name, (fname, size, *_) in TARGETS.items():
                int8 = name.endswith("int8")
                dtype = "int8" if int8 else "float32"
                em[name] = {"path": fname, "runtime": "onnxruntime" if name == "onnx" else "litert",
                            "bytes": int(size * size_scale), "parameter_bytes": 93_322 * (1 if int8 else 4),
                            "ops": {"CONV_2D": 3, "MAX_POOL_2D": 2, "RESHAPE": 1, "FULLY_CONNECTED": 2, "SOFTMAX": 1},
                            "input": [{"dtype": dtype, "shape": [-1, 28, 28, 1]}],
                            "output": [{"dtype": dtype, "shape": [-1, 10]}]}
            update_manifest(out, "export", config={"targets": list(TARGETS)}, metrics=em, artifacts=arts,
                            extra={"targets": list(TARGETS), "source": "model.keras"})
    if "validate" in stages:
        from edgekit.manifest import load_manifest

        by_path = {a["path"]: a for a in load_manifest(out)["artifacts"]}
        vt = {}
        for name, (fname, _, acc, agree, p50, p90, mad) in TARGETS.items():
            a = by_path[fname]
            vt[name] = {"target": name, "path": fname, "runtime": "onnxruntime" if name == "onnx" else "litert",
                        "accuracy": acc, "accuracy_drop_pt": round(100 * (REFERENCE_ACCURACY - acc), 4),
                        "agreement_pct": agree, "max_abs_diff": mad, "mean_abs_diff": mad / 7,
                        "latency_p50_ms": p50, "latency_p90_ms": p90, "threads": 1, "runs": 200,
                        "bytes": a["bytes"], "gzip_bytes": a["gzip_bytes"], "sha256": a["sha256"],
                        "disagreements": round((100 - agree) * 3.59), "samples": 359, "exact": agree == 100.0,
                        "status": "ok"}
            vt[name].update((targets or {}).get(name, {}))
        update_manifest(out, "validate", config={"runs": 200, "threads": 1},
                        metrics={"reference": {"path": "model.keras", "accuracy": REFERENCE_ACCURACY},
                                 "targets": vt})
    return out / "manifest.json"


def edit_manifest(path: Path, fn) -> None:
    """Change a manifest in place (bypassing update_manifest) to fake foreign/broken files."""
    man = json.loads(Path(path).read_text())
    fn(man)
    Path(path).write_text(json.dumps(man))
