"""Inference benchmark: the reference CNN on real MNIST, every runtime side by side in one process.

Trains the reference CNN (10 epochs, adam, batch 64) on the shared MNIST set (8,000 train /
2,000 holdout), exports it, and measures on the holdout: accuracy, drop vs Keras, top-1
agreement, batch-1 latency p50/p90 and size, with each latency's ratio to LiteRT int8.
Latency samples are taken in interleaved rounds (every runtime in turn, several times), so
load from other processes on the machine affects all of them alike.

    python benchmarks/inference.py            # saves benchmarks/results/inference.md
"""
from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

MNIST = Path(__file__).resolve().parents[2] / "shared/data/mnist"
RESULTS = Path(__file__).resolve().parent / "results" / "inference.md"
ROUNDS, RUNS_PER_ROUND, MICRO_RUNS = 5, 600, 12


def main() -> int:
    if not (MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        print(f"SKIP: the shared MNIST set is not at {MNIST} (it lives beside the project root).")
        return 0
    import edgekit  # noqa: F401
    from edgekit._lazy import tf
    from edgekit.data import load_dataset
    from edgekit.export import ExportConfig, export
    from edgekit.train import TrainConfig, train
    from edgekit.validate.metrics import accuracy, compare
    from edgekit.runtimes import KerasRunner, LiteRTRunner, MicroRunner, OrtRunner, percentiles

    load0 = os.getloadavg()
    ds = load_dataset(f"idx:{MNIST}", seed=0, val_split=0.0)
    print(f"MNIST: {ds.info.sizes['train']} train / {ds.info.sizes['test']} holdout", flush=True)
    work = Path(tempfile.mkdtemp(prefix="edgekit-bench-"))
    t0 = time.perf_counter()
    res = train(TrainConfig(model="cnn", optimizer="adam", epochs=10, batch_size=64, seed=0), ds, out=work / "train")
    train_s = time.perf_counter() - t0
    model = res.model
    print(f"trained in {train_s:.0f}s: holdout accuracy {res.metrics['test_accuracy']:.4f}", flush=True)
    t0 = time.perf_counter()
    exp = export(model, ds, ["tflite", "tflite-int8", "onnx", "onnx-int8", "micro"], work / "export",
                 config=ExportConfig(representative_samples=300))
    export_s = time.perf_counter() - t0
    x, y = ds.x_test, ds.y_test
    ref = np.asarray(model.predict(x, batch_size=256, verbose=0), np.float32)
    keras_acc = accuracy(ref, y)

    batch = 256
    tf_fn = tf().function(lambda t: model(t, training=False))
    xb = tf().constant(x[:batch])

    runners = {
        "Keras eager batch-1": KerasRunner(model, eager=True),
        "LiteRT float32": LiteRTRunner(exp.path("tflite"), threads=1),
        "LiteRT int8": LiteRTRunner(exp.path("tflite-int8"), threads=1),
        "ORT float32": OrtRunner(exp.path("onnx"), threads=1),
        "ORT int8": OrtRunner(exp.path("onnx-int8"), threads=1),
        "TFLite Micro int8": MicroRunner(exp.path("micro")),
        # tuning rows: what the defaults were chosen against
        "LiteRT int8, 2 threads": LiteRTRunner(exp.path("tflite-int8"), threads=2),
        "LiteRT int8, no XNNPACK": LiteRTRunner(exp.path("tflite-int8"), threads=1, resolver="no-delegates"),
        "ORT int8, 2 threads": OrtRunner(exp.path("onnx-int8"), threads=2),
    }
    files = {
        "Keras eager batch-1": work / "train/model.keras", "Keras batched (256)": work / "train/model.keras",
        "LiteRT float32": exp.path("tflite"), "LiteRT int8": exp.path("tflite-int8"),
        "ORT float32": exp.path("onnx"), "ORT int8": exp.path("onnx-int8"),
        "TFLite Micro int8": exp.out_dir / "micro/model_data.cc",
        "LiteRT int8, 2 threads": exp.path("tflite-int8"), "LiteRT int8, no XNNPACK": exp.path("tflite-int8"),
        "ORT int8, 2 threads": exp.path("onnx-int8"),
    }
    quality = {}
    for name, r in runners.items():
        if isinstance(r, KerasRunner):
            quality[name] = compare(ref, ref, y)
        else:
            print(f"{name}: predicting {len(x)} holdout images", flush=True)
            quality[name] = compare(ref, r.predict(x), y)
    quality["Keras batched (256)"] = quality["Keras eager batch-1"]

    # latency: interleaved rounds, batch 1 (Keras batched: one call of 256 images)
    samples: dict[str, list[float]] = {n: [] for n in [*runners, "Keras batched (256)"]}
    for rnd in range(ROUNDS):
        print(f"latency round {rnd + 1}/{ROUNDS}", flush=True)
        for name, r in runners.items():
            runs = MICRO_RUNS if isinstance(r, MicroRunner) else (60 if isinstance(r, KerasRunner) else RUNS_PER_ROUND)
            lat = r.latency(x[:1], runs=runs, warmup=2 if isinstance(r, MicroRunner) else 20)
            samples[name] += lat["samples_us"]
        lat = _time(lambda: tf_fn(xb).numpy(), 20, 3)
        samples["Keras batched (256)"] += lat
    load1 = os.getloadavg()

    rows = []
    for name in ["Keras eager batch-1", "Keras batched (256)", "LiteRT float32", "LiteRT int8", "ORT float32",
                 "ORT int8", "TFLite Micro int8", "LiteRT int8, 2 threads", "LiteRT int8, no XNNPACK",
                 "ORT int8, 2 threads"]:
        p = percentiles([s / 1e6 for s in samples[name]])  # samples are in us
        per_image = name.startswith("Keras batched")
        q = quality[name]
        rows.append({
            "name": name, "p50_us": p["p50_ms"] * 1e3 / (batch if per_image else 1),
            "p90_us": p["p90_ms"] * 1e3 / (batch if per_image else 1), "runs": p["runs"],
            "bytes": files[name].stat().st_size if name != "TFLite Micro int8" else exp.path("micro").stat().st_size,
            "accuracy": q["accuracy"], "drop_pt": q["accuracy_drop_pt"], "agreement": q["agreement_pct"],
            "max_diff": q["max_abs_diff"],
        })
    by = {r["name"]: r for r in rows}
    base = by["LiteRT int8"]["p50_us"]
    checks = [
        ("LiteRT int8 within 0.5 pt of Keras", by["LiteRT int8"]["drop_pt"] <= 0.5, f"{by['LiteRT int8']['drop_pt']:+.2f} pt"),
        ("LiteRT int8 >= 99% top-1 agreement", by["LiteRT int8"]["agreement"] >= 99, f"{by['LiteRT int8']['agreement']:.2f}%"),
        ("ORT int8 within 0.5 pt of Keras", by["ORT int8"]["drop_pt"] <= 0.5, f"{by['ORT int8']['drop_pt']:+.2f} pt"),
        ("ORT int8 >= 99% top-1 agreement", by["ORT int8"]["agreement"] >= 99, f"{by['ORT int8']['agreement']:.2f}%"),
        ("TFLite Micro int8 within 0.5 pt / >= 99% agreement",
         by["TFLite Micro int8"]["drop_pt"] <= 0.5 and by["TFLite Micro int8"]["agreement"] >= 99,
         f"{by['TFLite Micro int8']['drop_pt']:+.2f} pt, {by['TFLite Micro int8']['agreement']:.2f}%"),
        ("LiteRT int8 >= 1.5x faster than LiteRT float32", by["LiteRT float32"]["p50_us"] >= 1.5 * base,
         f"{by['LiteRT float32']['p50_us'] / base:.2f}x"),
        ("ORT int8 faster than ORT float32", by["ORT int8"]["p50_us"] < by["ORT float32"]["p50_us"],
         f"{by['ORT float32']['p50_us'] / by['ORT int8']['p50_us']:.2f}x"),
        ("LiteRT int8 batch-1 p50 under 25 us", base < 25.0, f"{base:.1f} us"),
    ]
    profile = _layer_profile(model, ds)
    md = _markdown(rows, base, checks, ds, keras_acc, train_s, export_s, load0, load1, exp, profile)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(md)
    print(md)
    print(f"saved {RESULTS}")
    return 0


def _layer_profile(model, ds) -> list[tuple[str, float, float]]:
    """Where LiteRT int8 time goes: bare ``invoke`` p50 (us) of the int8 model truncated after
    each layer (cumulative) and the increment each layer adds."""
    from edgekit._lazy import keras
    from edgekit.export.convert import to_tflite
    from edgekit.runtimes.litert import interpreter

    rep = ds.representative(300)
    out, prev = [], 0.0
    for layer in model.layers:
        sub = keras().Model(model.input, layer.output)
        data = to_tflite(sub, "int8", rep)
        it = interpreter(data, threads=1)
        d = it.get_input_details()[0]
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        times = []
        for _ in range(ROUNDS):
            times += _time(it.invoke, RUNS_PER_ROUND, 50)
        t = float(np.percentile(times, 50))
        out.append((layer.name, t, t - prev))
        prev = t
    return out


def _time(fn, runs: int, warmup: int) -> list[float]:
    """Every run's duration in microseconds."""
    from edgekit.runtimes import time_calls

    return time_calls(fn, runs, warmup)["samples_us"]


def _markdown(rows, base, checks, ds, keras_acc, train_s, export_s, load0, load1, exp, profile) -> str:
    from edgekit.manifest import library_versions

    v = library_versions()
    lines = [
        "# Inference benchmark: reference CNN on MNIST", "",
        f"`python benchmarks/inference.py` — reference CNN (93,322 params, 2.79 M MACs) trained 10 epochs (adam, "
        f"batch 64) on {ds.info.sizes['train']:,} real MNIST images in {train_s:.0f} s; measured on the "
        f"{ds.info.sizes['test']:,}-image holdout. Keras accuracy {keras_acc:.4f}. Export of 5 targets: {export_s:.0f} s.",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
        f"load average {load0[0]:.1f} before / {load1[0]:.1f} after (other jobs shared the cores). "
        f"tensorflow {v.get('tensorflow')}, ai-edge-litert {v.get('ai-edge-litert')}, onnxruntime "
        f"{v.get('onnxruntime')}, tflite-micro {v.get('tflite-micro')}.",
        "",
        "Latency: batch 1 (Keras batched: one call of 256 images, reported per image), after warm-up, "
        f"{ROUNDS} interleaved rounds; input already in the model's dtype; 1 thread unless noted. "
        "Ratio = p50 / p50 of LiteRT int8 (> 1: slower than LiteRT int8).",
        "",
        "| runtime | p50 (us) | p90 (us) | ratio to LiteRT int8 | size (bytes) | accuracy | drop (pt) | agreement | max abs diff |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['name']} | {r['p50_us']:.1f} | {r['p90_us']:.1f} | {r['p50_us'] / base:.2f}x | "
                     f"{r['bytes']:,} | {r['accuracy']:.4f} | {r['drop_pt']:+.2f} | {r['agreement']:.2f}% | "
                     f"{r['max_diff']:.1e} |")
    lines += ["", "| target | result | measured |", "|---|---|---|"]
    for name, ok, val in checks:
        lines.append(f"| {name} | {'PASS' if ok else 'MISS'} | {val} |")
    micro = exp.outputs["micro"].info
    lines += ["", f"TFLite Micro: tensor arena {micro['arena_bytes']:,} bytes (measured minimum "
              f"{micro['arena_bytes_min']:,}), model flash {micro['flash_bytes_estimate']:,} bytes; the host "
              "build of TFLM uses reference kernels, so its latency says nothing about an MCU.", "",
              "Where the LiteRT int8 time goes (bare `invoke`, 1 thread, the int8 model cut after each layer):", "",
              "| up to layer | cumulative p50 (us) | this layer (us) |", "|---|---:|---:|"]
    lines += [f"| {name} | {cum:.1f} | {inc:+.1f} |" for name, cum, inc in profile]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
