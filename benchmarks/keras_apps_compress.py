"""keras.applications MobileNetV2 (alpha 0.35, 96x96 RGB from the shared MNIST set) through edgekit compress:
prune 0.5 + QAT and channels 0.25 + QAT at the CLI defaults (fine-tunes that stop on validation loss,
BatchNorm statistics re-estimated after each stage), each exported to tflite-int8 and compared with the
float Keras 3 model on the holdout.

The model is built and trained in a Keras 3 child process (no pretrained weights), as a user's would be.

    python benchmarks/keras_apps_compress.py [--seeds 0,1,2] [--limit 4000] [--epochs 6]

Results: benchmarks/results/keras_apps_compress.md (with the CPU it ran on).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import machine, md_table, mnist_spec_or_exit, save  # noqa: E402
from benchmarks.standard_models import resized  # noqa: E402

SIZE = (96, 96, 3)
SETTINGS = {"prune 0.5 + QAT": dict(prune=0.5, quantize="qat"), "channels 0.25 + QAT": dict(channels=0.25, quantize="qat")}


def run_seed(seed: int, limit: int, epochs: int, tmp: Path, extra: dict) -> list[dict]:
    import numpy as np

    from edgekit.compress import CompressConfig, compress
    from edgekit.data import load_dataset
    from edgekit.errors import EdgekitError
    from edgekit.models.loading import load_for
    from tests.models.keras_apps import make_keras_apps

    ds = resized(load_dataset(mnist_spec_or_exit(), seed=seed, limit=limit), SIZE)
    t0 = time.perf_counter()
    folder = tmp / f"seed{seed}"
    x = np.concatenate([ds.x_train, ds.x_val])
    y = np.concatenate([ds.y_train, ds.y_val])
    make_keras_apps(folder, x, y, names=("mobilenet_v2",), small=True, epochs=epochs, timeout_s=7200)
    handle = load_for(str(folder / "mobilenet_v2.keras"), ds)
    base = float((handle.predict(ds.x_test).argmax(1) == ds.y_test).mean())
    print(f"seed {seed}: float Keras 3 holdout accuracy {base:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    rows = []
    for name, kw in SETTINGS.items():
        t = time.perf_counter()
        try:
            res = compress(handle, ds, CompressConfig(**kw, **extra, seed=seed, max_drop=None), out=folder / name, force=True)
            f = res.metrics["final"]
            acc = f.get("tflite_int8_accuracy", f["accuracy"])
            rows.append({"seed": seed, "setting": name, "float": base, "int8 .tflite": acc,
                         "drop_pt": (base - acc) * 100, "epochs": ", ".join(f"{s['stage']} {s['epochs']}"
                                                                         for s in res.metrics["stages"] if "epochs" in s),
                         "stages (pt)": ", ".join(f"{s['stage']} {s['accuracy_drop_pt']:+.2f}" for s in res.metrics["stages"][1:]),
                         "int8 B": f.get("tflite_int8_bytes"), "s": time.perf_counter() - t})
        except EdgekitError as e:
            rows.append({"seed": seed, "setting": name, "float": base, "error": str(e)[:160], "s": time.perf_counter() - t})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--limit", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--results", default="keras_apps_compress.md", help="file name under benchmarks/results")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a CompressConfig setting beside the defaults, e.g. qat_calibrate=true")
    args = ap.parse_args()
    import yaml

    extra = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    tmp = Path(tempfile.mkdtemp(prefix="edgekit-keras-apps-"))
    rows = [r for s in args.seeds.split(",") for r in run_seed(int(s), args.limit, args.epochs, tmp, extra)]
    summary = []
    for name in SETTINGS:
        drops = [r["drop_pt"] for r in rows if r["setting"] == name and "drop_pt" in r]
        if drops:
            summary.append({"setting": name, "mean drop (pt)": f"{statistics.mean(drops):.2f}",
                            "spread": f"{max(drops) - min(drops):.2f}", "seeds": len(drops)})
    for r in rows:
        for k in ("float", "int8 .tflite"):
            if k in r:
                r[k] = f"{r[k]:.4f}"
        if "drop_pt" in r:
            r["drop_pt"] = f"{r['drop_pt']:.2f}"
        r["s"] = f"{r['s']:.0f}"
    text = (f"# keras.applications MobileNetV2 0.35 at 96x96 through compress\n\nMachine: {machine()}. MNIST "
            f"(shared test set, {args.limit} images, 20% holdout), resized to 96x96, grey repeated to RGB; the model "
            f"trained {args.epochs} epochs in a Keras 3 process; `edgekit compress` at its defaults"
            + "".join(f", {k}={v}" for k, v in extra.items()) + "; drop = float Keras 3 "
            "minus the int8 .tflite on the holdout.\n\n" + md_table(summary, ["setting", "mean drop (pt)", "spread", "seeds"])
            + "\n" + md_table(rows, ["seed", "setting", "float", "int8 .tflite", "drop_pt", "epochs", "stages (pt)", "int8 B", "s",
                                   "error"]))
    print(text)
    save(args.results, text)


if __name__ == "__main__":
    main()
