"""Compression benchmark on the shared MNIST set: the seed CNN trained 10 epochs, then every
technique side by side -- float32 baseline, PTQ, prune, cluster, QAT, PQAT, CQAT, PCQAT and a
per-layer recipe. Sizes are the deployable artifact (the full-int8 .tflite, raw and gzip'd);
accuracy is measured on the 2,000-image holdout by the Keras model and by the int8 .tflite
itself (LiteRT). Ratios: baseline float32 .tflite bytes / row's int8 .tflite gzip'd bytes.

    python benchmarks/compression.py [--epochs-per-stage 2] [--only NAME,...]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, md_table, mnist_spec_or_exit, save  # noqa: E402

# name -> CompressConfig keyword arguments (epochs_per_stage added from the command line)
ROWS: dict[str, dict] = {
    "PTQ int8": dict(quantize="ptq"),
    "prune 80% (+PTQ)": dict(prune=0.8, prune_schedule="polynomial"),
    "cluster 16 (+PTQ)": dict(cluster=16, cluster_init="kmeans++"),
    "QAT int8": dict(quantize="qat"),
    "PQAT (prune 80%)": dict(prune=0.8, prune_schedule="polynomial", quantize="qat"),
    "CQAT (cluster 16)": dict(cluster=16, quantize="qat"),
    "PCQAT (80%, 16)": dict(prune=0.8, prune_schedule="polynomial", cluster=16, quantize="qat"),
}
# the per-layer recipe: most weights sit in conv2 (18k), conv3 (37k) and dense1 (37k);
# conv1 (288) and the classifier (640) stay dense and get more shared values
BEST = dict(
    prune_layers={"conv2": 0.9, "conv3": 0.95, "dense1": 0.97},
    prune_schedule="polynomial",
    cluster_layers={"conv1": 16, "conv2": 8, "conv3": 8, "dense1": 8, "output": 16},
    quantize="qat",
    prune_epochs=6,
    cluster_epochs=3,
    qat_epochs=3,
)
ROWS["best per-layer PCQAT"] = BEST
BASE_EPOCHS = 10


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs-per-stage", type=int, default=2)
    ap.add_argument("--only", default="", help="Comma-separated row names (default: all).")
    ap.add_argument("--no-save", action="store_true", help="Print the table without saving it.")
    args = ap.parse_args()
    spec = mnist_spec_or_exit()

    import edgekit  # noqa: F401  (sets TF_USE_LEGACY_KERAS)
    from edgekit.artifacts import gzip_size
    from edgekit.compress import CompressConfig, compress
    from edgekit.compress.metrics import tflite_accuracy
    from edgekit.data import load_dataset
    from edgekit.export.convert import to_tflite
    from edgekit.train import TrainConfig, train

    ds = load_dataset(spec, seed=0)
    t0 = time.perf_counter()
    base = train(TrainConfig(model="cnn", optimizer="adam", epochs=BASE_EPOCHS, batch_size=64, seed=0), ds)
    train_s = time.perf_counter() - t0
    f32 = to_tflite(base.model, "float32")
    base_acc = base.metrics["test_accuracy"]
    rows = [{
        "technique": "float32 baseline", "Keras acc": f"{base_acc:.4f}",
        ".tflite acc": f"{tflite_accuracy(f32, ds):.4f}", "drop (pt)": "0.00",
        ".tflite B": f"{len(f32):,}", ".tflite gzip B": f"{gzip_size(f32):,}", "ratio (gzip)": f"{len(f32) / gzip_size(f32):.1f}x",
        "sparsity": "0.000", "max unique": "-", "s": f"{train_s:.0f}",
    }]
    print(f"baseline: cnn {BASE_EPOCHS} epochs, holdout {base_acc:.4f}, float32 .tflite {len(f32):,} B "
          f"({train_s:.0f}s)", flush=True)
    only = [n.strip() for n in args.only.split(",") if n.strip()]
    details = {}
    for name, kw in ROWS.items():
        if only and name not in only:
            continue
        cfg = CompressConfig(epochs_per_stage=args.epochs_per_stage, **kw)
        t = time.perf_counter()
        res = compress(base.model, ds, cfg)
        secs = time.perf_counter() - t
        fin = res.final
        acc = fin["tflite_int8_accuracy"]
        rows.append({
            "technique": name, "Keras acc": f"{fin['accuracy']:.4f}", ".tflite acc": f"{acc:.4f}",
            "drop (pt)": f"{(base_acc - acc) * 100:.2f}", ".tflite B": f"{fin['tflite_int8_bytes']:,}",
            ".tflite gzip B": f"{fin['tflite_int8_gzip_bytes']:,}",
            "ratio (gzip)": f"{len(f32) / fin['tflite_int8_gzip_bytes']:.1f}x",
            "sparsity": f"{fin['sparsity']:.3f}", "max unique": f"{fin['max_unique_values']:,}",
            "s": f"{secs:.0f}",
        })
        details[name] = kw
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in rows[-1].items() if k != "technique"), flush=True)

    cols = list(rows[0])
    table = md_table(rows, cols)
    head = (
        "# Compression benchmark (seed `cnn` on MNIST)\n\n"
        f"Machine: {machine()}. Data: {spec.split(':', 1)[0]} shared MNIST test set, "
        f"{ds.info.sizes['train']:,} train / {ds.info.sizes['val']:,} val / {ds.info.sizes['test']:,} holdout. "
        f"Baseline: seed `cnn` ({base.metrics['params']:,} params), adam, batch 64, {BASE_EPOCHS} epochs. "
        f"Each compression stage fine-tunes {args.epochs_per_stage} epoch(s) (adam; clustering and QAT at lr/10) "
        "unless its config says otherwise.\n\n"
        "Every row but the baseline ships the full-int8 .tflite (int8 weights/activations/input/output): "
        "'.tflite B' is its size, '.tflite gzip B' the same file gzip'd (level 9), 'ratio (gzip)' = baseline "
        "float32 .tflite bytes / that gzip'd size. '.tflite acc' runs that file on the 2,000-image holdout with "
        "LiteRT; 'drop' is baseline Keras accuracy minus it, in points. 'max unique': most distinct values in any "
        "kernel of the float weights; 'sparsity': zeros over all conv/dense kernels; 's': seconds of the row.\n\n"
    )
    configs = "\n".join(f"- {k}: `CompressConfig(epochs_per_stage={args.epochs_per_stage}, "
                        f"{', '.join(f'{a}={b!r}' for a, b in v.items())})`" for k, v in details.items())
    text = head + table + "\n## Configs\n\n" + configs + "\n"
    print("\n" + table)
    if not args.no_save:
        print(f"saved {save('compression.md', text)}")


if __name__ == "__main__":
    main()
