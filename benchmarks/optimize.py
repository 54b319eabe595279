"""``edgekit optimize`` on the reference CNN (MNIST 8k/2k, as benchmarks/compression.py): the search
with --max-accuracy-drop 0.5 --budget-minutes 20 --target tflite-int8, compared with the artifact of
recipes/cnn_pcqat_edgetpu.yaml (the hand-tuned per-layer PCQAT: 102,840 B raw, 11,661 B gzip'd,
benchmarks/results/compression.md). Reports wall time, candidates, the winner's raw/gzip bytes and
holdout drop, then re-runs the winner's recipe.yaml with `edgekit run` (same size, accuracy within noise).

    python benchmarks/optimize.py [--seed N] [--val-split 0.5] [--budget-minutes 20] [--no-rerun] [--work DIR] [--name STEM]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, md_table, mnist_spec_or_exit, save  # noqa: E402

PCQAT = {"raw": 102_840, "gzip": 11_661, "drop_pt": 0.30}  # recipes/cnn_pcqat_edgetpu.yaml (compression.md)
BASE_EPOCHS = 10


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-minutes", type=float, default=20.0)
    ap.add_argument("--max-accuracy-drop", type=float, default=0.5)
    ap.add_argument("--work", default=None,
                    help="Work folder (default runs/bench_optimize_valNN: the baseline is trained per split).")
    ap.add_argument("--val-split", type=float, default=0.5,
                    help="Share of the 8,000 search images kept for validation (0.5: 4,000 train / 4,000 val; "
                         "the margin's standard error shrinks with it).")
    ap.add_argument("--no-rerun", action="store_true", help="Skip `edgekit run` of the winner's recipe.")
    ap.add_argument("--seed", type=int, default=0,
                    help="Seed of the baseline's training and of the search (the data split stays seed 0); "
                         "results of seed N > 0 go to optimize-seedN.md.")
    ap.add_argument("--name", default="optimize",
                    help="Results file stem: NAME.md for seed 0, NAME-seedN.md otherwise.")
    args = ap.parse_args()
    spec = mnist_spec_or_exit()

    import edgekit  # noqa: F401  (sets TF_USE_LEGACY_KERAS)
    from edgekit.cli.progress import Display
    from edgekit.data import load_dataset
    from edgekit.optimize import OptimizeConfig, optimize
    from edgekit.train import TrainConfig, train

    base = Path(args.work) if args.work else ROOT / "runs" / f"bench_optimize_val{round(100 * args.val_split)}"
    work = base if args.seed == 0 else base / f"seed{args.seed}"
    ds = load_dataset(spec, seed=0, val_split=args.val_split)
    model = work / "train" / "model.keras"
    t0 = time.perf_counter()
    if not model.exists():
        train(TrainConfig(model="cnn", optimizer="adam", epochs=BASE_EPOCHS, batch_size=64, seed=args.seed),
              ds,
              out=model.parent, force=True)
    train_s = time.perf_counter() - t0
    print(f"baseline trained in {train_s:.0f}s -> {model}", flush=True)
    config = OptimizeConfig(target="tflite-int8", max_accuracy_drop=args.max_accuracy_drop,
                            budget_minutes=args.budget_minutes, seed=args.seed)
    out = work / "search"
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    res = optimize(str(model), ds, config, out, force=True, progress=Display(live=False))
    wall, load1 = time.perf_counter() - t0, os.getloadavg()[0]
    rep, w, h = res.report, res.winner, res.report["holdout"]
    rerun = None
    if not args.no_rerun and w is not None:
        run_dir = work / "rerun"
        t1 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "edgekit.cli.main", "run", str(res.recipe_path), "--out",
                               str(run_dir), "--force"], capture_output=True, text=True, timeout=3600)
        man = json.loads((run_dir / "manifest.json").read_text())
        art = next(a for a in man["artifacts"] if a.get("target") == "tflite-int8" and a["path"].endswith(".tflite"))
        val = man["stages"].get("validate", {}).get("metrics", {}).get("tflite-int8", {})
        from edgekit.optimize.evaluate import measure_artifact

        m = measure_artifact(run_dir / art["path"], "litert", ds.x_test, ds.y_test, 1)
        rerun = {"rc": proc.returncode, "raw": art["bytes"], "gzip": art["gzip_bytes"], "holdout": m["accuracy"],
                 "drop_pt": 100 * (h["reference_accuracy"] - m["accuracy"]), "seconds": time.perf_counter() - t1,
                 "validate": val}
        print(f"edgekit run of recipe.yaml: rc {proc.returncode}, {art['bytes']:,} B / {art['gzip_bytes']:,} B gzip, "
              f"holdout {m['accuracy']:.4f}", flush=True)
        if proc.returncode not in (0, 1):
            print(proc.stderr[-3000:], flush=True)
    rows = [
        {"artifact": "recipes/cnn_pcqat_edgetpu.yaml (per-layer PCQAT, hand-tuned; compression.md)",
         "raw B": f"{PCQAT['raw']:,}", "gzip B": f"{PCQAT['gzip']:,}", "holdout drop (pt)": f"{PCQAT['drop_pt']:.2f}",
         "latency us": ""},
        {"artifact": f"optimize winner: {w['key']}" if w else "optimize: nothing", "raw B": f"{w['raw_bytes']:,}",
         "gzip B": f"{w['gzip_bytes']:,}", "holdout drop (pt)": f"{h['drop_pt']:.2f}",
         "latency us": f"{w['latency_us']:.1f}"},
    ]
    if rerun:
        rows.append({"artifact": "`edgekit run` of the winner's recipe.yaml", "raw B": f"{rerun['raw']:,}",
                     "gzip B": f"{rerun['gzip']:,}", "holdout drop (pt)": f"{rerun['drop_pt']:.2f}", "latency us": ""})
    smaller = w is not None and w["raw_bytes"] <= PCQAT["raw"] and w["gzip_bytes"] <= PCQAT["gzip"]
    verdict = (f"{'met' if smaller and h['drop_pt'] <= args.max_accuracy_drop + 1e-9 else 'NOT met'}: winner raw "
               f"{w['raw_bytes']:,} B ({PCQAT['raw'] / w['raw_bytes']:.1f}x smaller than PCQAT's), gzip "
               f"{w['gzip_bytes']:,} B ({PCQAT['gzip'] / w['gzip_bytes']:.2f}x), holdout drop {h['drop_pt']:.2f} pt")
    cands = md_table([{k: r[k] for k in ("index", "key", "val_accuracy", "val_drop_pt", "raw_bytes", "gzip_bytes",
                                         "latency_us", "seconds")} for r in rep["candidates"]],
                     ["index", "key", "val_accuracy", "val_drop_pt", "raw_bytes", "gzip_bytes", "latency_us",
                      "seconds"])
    text = (
        "# optimize benchmark (reference `cnn` on MNIST)\n\n"
        f"Machine: {machine()}; 1-minute load average {load0:.1f} before the search and {load1:.1f} after it "
        f"(above the core count: other jobs shared the cores, and wall times and latencies are under that load). "
        f"Data: shared MNIST test set, {ds.info.sizes['train']:,} train / {ds.info.sizes['val']:,} val / "
        f"{ds.info.sizes['test']:,} holdout. Baseline: reference `cnn`, adam, batch 64, {BASE_EPOCHS} epochs, "
        f"seed {args.seed} "
        f"(trained in {train_s:.0f}s; 0 s = reused). Command (API form): `edgekit optimize MODEL --dataset {spec} "
        f"--target tflite-int8 --max-accuracy-drop {args.max_accuracy_drop:g} --budget-minutes "
        f"{args.budget_minutes:g} --out ...`.\n\n"
        f"Search: **{wall / 60:.1f} min wall**, **{len(rep['candidates'])} candidates** (baseline included). "
        f"Goal: an int8 .tflite at least as small raw and gzip'd as recipes/cnn_pcqat_edgetpu.yaml "
        f"at <= {args.max_accuracy_drop:g} pt holdout drop: **{verdict}**.\n\n"
        f"{md_table(rows, list(rows[0]))}\n"
        f"Winner holdout: {h['accuracy']:.4f} vs the float model's {h['reference_accuracy']:.4f} on "
        f"{h['samples']:,} images the search never saw; validation drop {w['val_drop_pt']:+.2f} pt. "
        f"Latency: {rep['latency_note']}.\n\n"
        + (f"Re-run: `edgekit run recipe.yaml` exit {rerun['rc']}, {rerun['seconds']:.0f}s; artifact "
           f"{rerun['raw']:,} B raw / {rerun['gzip']:,} B gzip (search: {w['raw_bytes']:,} / {w['gzip_bytes']:,}), "
           f"holdout {rerun['holdout']:.4f}.\n\n" if rerun else "")
        + "## Every candidate\n\n" + cands
        + "\n## Per-layer sensitivity (validation drop, no fine-tune)\n\n"
        + md_table(rep["sensitivity"], ["layer", "params", "channels_drop_pt", "prune_drop_pt"])
    )
    print("\n" + text)
    print(f"saved {save(f'{args.name}.md' if args.seed == 0 else f'{args.name}-seed{args.seed}.md', text)}")


if __name__ == "__main__":
    main()
