"""Training throughput of the reference CNN with each acceleration option, side by side.

Rows: the default run, --jit (XLA), --mixed-precision (bfloat16 on CPU), both, op
determinism off, batch 64/128/256, and MultiWorkerMirroredStrategy with 1 and 2 local
worker processes on loopback. images/s is the steady-state training throughput (median
of the epochs after the first, validation included, as `edgekit train` reports it);
ratios are to the default row. Also times the tf.data input pipeline alone, to show
whether it limits training.

    python benchmarks/train_acceleration.py [--epochs 3] [--dataset idx:DIR] [--out FILE.md]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
RESULTS = ROOT / "benchmarks" / "results" / "train_acceleration.md"
WORKER_TIMEOUT = 900


def default_spec() -> str:
    return f"idx:{MNIST}" if (MNIST / "t10k-images-idx3-ubyte.gz").is_file() else "digits"


def run_in_process(spec: str, epochs: int, **kw) -> dict:
    from edgekit.data import load_dataset
    from edgekit.train import TrainConfig, train

    data = load_dataset(spec, seed=0)
    res = train(TrainConfig(model="cnn", epochs=epochs, seed=0, **kw), data)
    return {"images_per_second": res.metrics["images_per_second"], "test_accuracy": res.metrics["test_accuracy"],
            "global_batch": res.metrics.get("global_batch_size", kw.get("batch_size", 64))}


def worker_main(argv: list[str]) -> int:
    """One benchmark process: CONFIG_JSON SPEC EPOCHS RESULT.json [WORKERS INDEX]."""
    config, spec, epochs, result = json.loads(argv[0]), argv[1], int(argv[2]), argv[3]
    if len(argv) > 4:
        from edgekit.train.workers import export_tf_config, from_workers

        export_tf_config(from_workers(argv[4], int(argv[5])))
        config["strategy"] = "multiworker"
    r = run_in_process(spec, epochs, **config)
    Path(result).write_text(json.dumps(r))
    return 0


def run_row(config: dict, spec: str, epochs: int, workers: int = 0) -> dict:
    """Train in fresh processes (every row alike): one plain process, or ``workers`` local
    MultiWorkerMirroredStrategy processes on loopback; returns the chief's numbers."""
    from edgekit.train.workers import free_port

    ports: list[int] = []
    while len(ports) < workers:
        p = free_port()
        if p not in ports:
            ports.append(p)
    addrs = ",".join(f"127.0.0.1:{p}" for p in ports)
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        procs = []
        for i in range(max(workers, 1)):
            cmd = [sys.executable, __file__, "--worker", json.dumps(config), spec, str(epochs), f"{tmp}/r{i}.json"]
            if workers:
                cmd += [addrs, str(i)]
            procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          text=True))
        try:
            errs = [p.communicate(timeout=WORKER_TIMEOUT)[1] for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        for p, err in zip(procs, errs):
            if p.returncode != 0:
                raise RuntimeError(f"benchmark process failed ({p.returncode}): {err[-1500:]}")
        return json.loads(Path(f"{tmp}/r0.json").read_text())


def pipeline_images_per_second(spec: str, batch: int) -> dict[str, float]:
    """Iterate one epoch of the train split: edgekit's tf_data vs a cached per-image pipeline."""
    from edgekit._lazy import tf
    from edgekit.data import load_dataset

    data = load_dataset(spec, seed=0)
    n = len(data.x_train)
    out = {}
    variants = {
        "edgekit `Dataset.tf_data`: index shuffle, batched gather (parallel map), prefetch AUTOTUNE":
            lambda: data.tf_data("train", batch, shuffle=True, seed=0),
        "per-image: from_tensor_slices, cache, shuffle, batch, prefetch AUTOTUNE":
            lambda: tf().data.Dataset.from_tensor_slices((data.x_train, data.y_train)).cache()
            .shuffle(n, seed=0).batch(batch).prefetch(tf().data.AUTOTUNE),
    }
    for name, make in variants.items():
        ds = make()
        for _ in ds:  # warm up (and fill the cache)
            pass
        best = 0.0
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in ds:
                pass
            best = max(best, n / (time.perf_counter() - t0))
        out[name] = best
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--dataset", default=None, help="dataset spec (default: shared MNIST, else digits)")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--repeats", type=int, default=3, help="runs per row (median and range reported)")
    ap.add_argument("--skip-workers", action="store_true", help="leave out the multi-worker rows")
    args = ap.parse_args()
    spec = args.dataset or default_spec()

    import tensorflow as tf

    from edgekit.data import load_dataset
    from edgekit.train.devices import report

    dev = report()
    n_train = load_dataset(spec, seed=0).info.sizes["train"]
    plan = [
        ("default (batch 64)", {}, 0),
        ("--jit (XLA)", {"jit": True}, 0),
        ("--mixed-precision (mixed_bfloat16)", {"mixed_precision": True}, 0),
        ("--jit --mixed-precision", {"jit": True, "mixed_precision": True}, 0),
        ("op determinism off", {"deterministic": False}, 0),
        ("--batch-size 128", {"batch_size": 128}, 0),
        ("--batch-size 256", {"batch_size": 256}, 0),
        ("--batch-size 256 --mixed-precision", {"batch_size": 256, "mixed_precision": True}, 0),
    ]
    if not args.skip_workers:
        plan += [
            ("multiworker, 1 worker process (batch 64)", {"batch_size": 64}, 1),
            ("multiworker, 2 worker processes (32 each = 64)", {"batch_size": 32}, 2),
            ("multiworker, 2 worker processes (64 each = 128)", {"batch_size": 64}, 2),
        ]
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in plan}
    for rep in range(args.repeats):  # round robin, so background load hits every row alike
        for name, config, workers in plan:
            r = run_row(config, spec, args.epochs, workers)
            print(f"[{rep + 1}/{args.repeats}] {name:<48} {r['images_per_second']:>7.0f} images/s  "
                  f"acc {r['test_accuracy']:.4f}", flush=True)
            runs[name].append(r)
    rows = []
    for name, _, _ in plan:
        ips = sorted(r["images_per_second"] for r in runs[name])
        rows.append({"run": name, "images_per_second": float(statistics.median(ips)), "min": ips[0], "max": ips[-1],
                     "test_accuracy": runs[name][0]["test_accuracy"], "global_batch": runs[name][0]["global_batch"]})
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    pipe = pipeline_images_per_second(spec, 64)

    base = rows[0]["images_per_second"]
    data_name = "the shared MNIST set (`idx:shared/data/mnist`)" if spec.startswith("idx:") else f"`{spec}`"
    lines = [
        "# Training acceleration: reference CNN images/s",
        "",
        f"Command: `python benchmarks/train_acceleration.py --epochs {args.epochs} --repeats {args.repeats}`. Dataset: {data_name} "
        f"({n_train} training images), {args.epochs} epochs per row, seed 0, every row in fresh "
        "processes, rows run round-robin `--repeats` times. images/s is the steady-state training throughput (median of epochs 2..N, "
        "validation included; for multiworker the chief's global rate); ratio is to the default row. "
        "Accuracy is on the holdout split.",
        "",
        f"Machine: {dev.cpu_model}, {dev.cpu_cores} cores, shared with other jobs while measured "
        f"(load average {load:.1f} at the end), "
        f"CPU features: {', '.join(dev.cpu_features)}; GPUs: {', '.join(dev.gpus) or 'none'}; "
        f"TPUs: {', '.join(dev.tpus) or 'none'}. TensorFlow {tf.__version__}, Python {platform.python_version()}. "
        "No GPU was available for this run, so there is no GPU vs CPU (or mixed_float16) row.",
        "",
        "| run | global batch | images/s (median) | min..max | ratio | test accuracy |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['run']} | {r['global_batch']} | {r['images_per_second']:.0f} | "
                     f"{r['min']:.0f}..{r['max']:.0f} | {r['images_per_second'] / base:.2f}x | {r['test_accuracy']:.4f} |")
    lines += ["", "Input pipeline alone (one epoch of the train split, batch 64, best of 3):", "",
              "| pipeline | images/s | vs default training |", "|---|---:|---:|"]
    for name, v in pipe.items():
        lines.append(f"| {name} | {v:.0f} | {v / base:.1f}x |")
    text = "\n".join(lines) + "\n"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print("\n" + text)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        sys.exit(worker_main(sys.argv[2:]))
    sys.exit(main())
