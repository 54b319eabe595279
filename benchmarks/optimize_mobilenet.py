"""keras.applications MobileNetV2 (alpha 0.35, 96x96 RGB from the shared MNIST set, grey repeated) through
``edgekit optimize --max-accuracy-drop 1.0 --workers 2``: the winner against the PTQ int8 of the same
model (the search's baseline): raw bytes, LiteRT latency (both measured here, side by side, batch 1, one
thread, alternating rounds) and the accuracy drop on the holdout the search never saw.

The model is built and trained in a Keras 3 child process (no pretrained weights), as a user's would be.

    python benchmarks/optimize_mobilenet.py [--limit 10000] [--epochs 2] [--budget-minutes 60] [--workers 2]

Results: benchmarks/results/optimize_mobilenet.md (with the CPU it ran on).
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


def side_by_side(paths: dict[str, Path], x1, rounds: int = 7, runs: int = 300) -> dict[str, float]:
    """Median batch-1, 1-thread LiteRT latency (us) of each artifact, rounds alternating between them."""
    from edgekit.runtimes import make_runner

    runners = {k: make_runner("litert", p, threads=1) for k, p in paths.items()}
    got: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(rounds):
        for k, r in runners.items():
            got[k].append(float(r.latency(x1, runs=runs)["p50_ms"]) * 1e3)
    return {k: statistics.median(v) for k, v in got.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=10000, help="MNIST images used (train, validation and holdout)")
    ap.add_argument("--val-split", type=float, default=0.2)
    ap.add_argument("--epochs", type=int, default=2, help="training epochs of the input model (x3 for MobileNetV2)")
    ap.add_argument("--budget-minutes", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--channels-epochs", type=int, default=2)
    ap.add_argument("--work", default=None, help="folder for the model and the search (default: a temporary one)")
    args = ap.parse_args()

    import numpy as np

    from edgekit.data import load_dataset
    from edgekit.optimize import OptimizeConfig, optimize
    from tests.models.keras_apps import make_keras_apps

    work = Path(args.work or tempfile.mkdtemp(prefix="edgekit-mnv2-"))
    t0 = time.perf_counter()
    ds = resized(load_dataset(mnist_spec_or_exit(), seed=0, limit=args.limit, val_split=args.val_split), SIZE)
    model = work / "model" / "mobilenet_v2.keras"
    if not model.exists():
        x, y = np.concatenate([ds.x_train, ds.x_val]), np.concatenate([ds.y_train, ds.y_val])
        facts = make_keras_apps(model.parent, x, y, names=("mobilenet_v2",), small=True, epochs=args.epochs,
                                timeout_s=7200)  # trained on the training split, checked on the validation split
        print(f"model: {facts['mobilenet_v2']} ({time.perf_counter() - t0:.0f} s)", flush=True)
    cfg = OptimizeConfig(max_accuracy_drop=1.0, budget_minutes=args.budget_minutes,
                         channels_epochs=args.channels_epochs, prune_epochs=1, cluster_epochs=1, qat_epochs=1,
                         latency_runs=50)
    t1 = time.perf_counter()
    res = optimize(str(model), ds, cfg, work / "opt", force=True, workers=args.workers,
                   ray_address="local" if args.workers > 1 else None, worker_threads=1,
                   progress=lambda m: print(m, flush=True))
    search_s = time.perf_counter() - t1
    rep = res.report
    by_key = {c["key"]: c for c in rep["candidates"]}
    base, win = by_key["baseline"], rep["winner"]
    lat = side_by_side({"PTQ int8": work / "opt" / base["artifact"], "winner": work / "opt" / win["artifact"]},
                       ds.x_val[:1])
    h = rep["holdout"]
    rows = [{"artifact": "PTQ int8 of the input", "raw B": base["raw_bytes"], "gzip B": base["gzip_bytes"],
             "latency us": lat["PTQ int8"], "val drop pt": base["val_drop_pt"], "holdout drop pt": "-"},
            {"artifact": f"winner: {win['key']}", "raw B": win["raw_bytes"], "gzip B": win["gzip_bytes"],
             "latency us": lat["winner"], "val drop pt": win["val_drop_pt"], "holdout drop pt": h["drop_pt"]}]
    smaller, faster = base["raw_bytes"] / win["raw_bytes"], lat["PTQ int8"] / lat["winner"]
    text = "\n".join([
        "# optimize on keras.applications MobileNetV2 (alpha 0.35, 96x96)", "",
        f"Machine: {machine()}.", "",
        f"MNIST ({args.limit} images of the shared set, resized to 96x96, grey repeated): "
        f"{len(ds.y_train)} train, {len(ds.y_val)} validation, {len(ds.y_test)} holdout. The input model "
        f"(Keras 3, no pretrained weights, {args.epochs * 3} epochs) has validation accuracy "
        f"{rep['reference_val_accuracy']:.4f}.", "",
        f"`optimize --max-accuracy-drop 1.0 --workers {args.workers} --worker-threads 1 --budget-minutes "
        f"{args.budget_minutes:g} --channels-epochs {args.channels_epochs} --prune-epochs 1 --cluster-epochs 1 "
        f"--qat-epochs 1`: {len(rep['candidates'])} candidates in {search_s / 60:.1f} min; "
        f"{'met' if res.met else 'NOT met'}.", "",
        md_table(rows, list(rows[0])), "",
        f"Winner against the PTQ int8: **{smaller:.2f}x smaller raw**, **{faster:.2f}x faster** (LiteRT, batch 1, "
        f"1 thread, median of 7 alternating rounds of 300 runs, measured here after the search), holdout drop "
        f"**{h['drop_pt']:+.2f} pt** ({h['accuracy']:.4f} vs {h['reference_accuracy']:.4f}, {h['samples']} images "
        "the search never saw).", "",
        "Candidates (latency as measured during the search, on the node named):", "",
        md_table([{"key": c["key"][:110], "val drop pt": c["val_drop_pt"], "margin": c.get("margin_pt", 0.0),
                   "raw B": c["raw_bytes"], "latency us": c["latency_us"], "s": c["seconds"],
                   "node": c.get("node", "-")} for c in rep["candidates"]],
                 ["key", "val drop pt", "margin", "raw B", "latency us", "s", "node"]),
    ])
    print(text)
    print("->", save("optimize_mobilenet.md", text))


if __name__ == "__main__":
    main()
