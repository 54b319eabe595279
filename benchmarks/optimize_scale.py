"""``edgekit optimize`` with more workers: the same search, one after another in one run.

- ``--workers 1`` in this process (TensorFlow on every core: what a search does by default);
- ``--workers 1 --worker-threads 1`` on local Ray (one candidate at a time, one thread each);
- ``--workers 2 --worker-threads 1`` on local Ray (each batch of the search two members at a time).

The last two run every candidate with the same TensorFlow thread count, so they must ask the same
candidates and pick the same winner; the table shows whether they did, candidates per minute and the
winner's holdout drop. Then a projection to 1, 2, 4 and 8 workers, a model (:func:`project`) fed with
the one-worker run's batches (each candidate's measured seconds) and the driver's serial seconds;
the rows measured are marked as such. Give the budget room to end the search by itself (the 1- and
2-worker searches are the same only when neither is cut by the budget).

    python benchmarks/optimize_scale.py [--budget-minutes 10] [--limit 4000] [--epochs 4]
    python benchmarks/optimize_scale.py --dry   # the projection alone, on a synthetic search (no TensorFlow)
    python benchmarks/optimize_scale.py --abba  # the two Ray searches only, 1, 2, 2, 1 workers (drift cancels)

Results: benchmarks/results/optimize_scale.md (with the CPU it ran on).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, md_table, mnist_spec_or_exit, save  # noqa: E402

RUNS = (("in process, all cores", 1, None), ("Ray, 1 worker x 1 thread", 1, 1), ("Ray, 2 workers x 1 thread", 2, 1))
WORKERS = (1, 2, 4, 8)
MODEL = ("each batch of the search takes the time its members take spread over N workers in the batch's order "
         "(each member to the first worker free, as the evaluator submits them: the sum of their seconds at 1 worker, "
         "about ceil(k/N) rounds of the mean candidate for k members of equal cost), and the driver's serial seconds "
         "(its start, the baseline's reference, the sensitivity, unpacking and recording each result, deciding the "
         "next batch: the 1-worker search's seconds less its candidates' seconds) are added once, whatever N. It "
         "assumes a core per worker thread besides the driver's, and that the same batches are asked (true "
         "while the budget does not cut the search)")


def makespan(seconds: list[float], workers: int) -> float:
    """Seconds a batch of members taking ``seconds`` takes on ``workers``: each, in order, to the first free."""
    lanes = [0.0] * max(1, min(workers, len(seconds)))
    for s in seconds:
        lanes[lanes.index(min(lanes))] += s
    return max(lanes, default=0.0)


def project(batches: list[list[float]], serial_s: float, workers: tuple[int, ...] = WORKERS) -> list[dict]:
    """Candidates per minute at each number of workers (:data:`MODEL`)."""
    n = sum(len(b) for b in batches)
    rows = []
    for w in workers:
        total = serial_s + sum(makespan(b, w) for b in batches)
        rows.append({"workers": w, "search s": total, "candidates/min": 60.0 * n / total if total else 0.0})
    return rows


def batches_of(candidates: list[dict]) -> list[list[float]]:
    """The measured seconds of each batch's members (a result records its batch number), in order."""
    out: dict[int, list[float]] = {}
    for c in candidates:
        out.setdefault(int(c.get("batch", len(out) + 1)), []).append(float(c["seconds"]))
    return [out[k] for k in sorted(out)]


def synthetic_batches(candidate_s: float) -> list[list[float]]:
    """The batches the search asks on a closed-form model (no TensorFlow: accuracy falls with each layer's
    fraction squared, pruning costs accuracy, a fine-tune twice as long halves the drop), each candidate
    ``candidate_s`` per unit of fine-tune: what ``--dry`` projects."""
    from edgekit.optimize.config import OptimizeConfig
    from edgekit.optimize.search import run_search
    from edgekit.optimize.sensitivity import LayerSensitivity
    from edgekit.optimize.space import Space

    params = {"conv1": 320, "conv2": 4640, "conv3": 18496, "dense1": 36928, "output": 650}
    weight = {"conv1": 6.0, "conv2": 1.5, "conv3": 0.8, "dense1": 0.4, "output": 0.0}
    groups = ("conv1", "conv2", "conv3", "dense1")
    space = Space(groups, tuple(params), tuple(params), params, {"conv1": 32, "conv2": 32, "conv3": 64, "dense1": 64})
    sens = [LayerSensitivity(g, params[g], weight[g], weight[g] / 2) for g in groups]
    batches: list[list[float]] = []
    seen: set[str] = set()

    def measure(c):
        ch, pr = dict(c.channels), dict(c.prune)
        drop = (sum(weight[k] * v * v for k, v in ch.items()) + (0.2 if c.cluster else 0.0)
                + 1.2 * max(pr.values(), default=0.0)) / c.tune
        raw = 200 + sum(int(p * (1 - ch.get(k, 0.0))) for k, p in params.items())
        gz = int(raw * (1 - 0.5 * max(pr.values(), default=0.0)) * (0.8 if c.cluster else 1.0))
        return {"key": c.key, "val_drop_pt": drop, "val_accuracy": 0.99 - drop / 100, "raw_bytes": raw,
                "gzip_bytes": gz, "latency_us": raw / 100}

    class Evaluate:
        def __call__(self, c):
            return self.many([c])[0]

        def many(self, cs):
            new = [c for c in cs if c.key not in seen]
            seen.update(c.key for c in new)
            if new:
                batches.append([candidate_s * c.tune for c in new])
            return [measure(c) for c in cs]

    run_search(Evaluate(), space, sens, OptimizeConfig(max_accuracy_drop=1.0), lambda ch: params)
    return batches


def projection_text(batches: list[list[float]], serial_s: float, measured: dict[int, float]) -> tuple[str, list]:
    rows = []
    for r in project(batches, serial_s):
        m = measured.get(r["workers"])
        rows.append({"workers": r["workers"], "candidates/min (model)": f"{r['candidates/min']:.2f}",
                     "search min (model)": f"{r['search s'] / 60:.2f}",
                     "candidates/min (measured)": f"{m:.2f} (measured)" if m is not None else "-"})
    widths = [len(b) for b in batches]
    text = (f"Projection (a model, not a measurement): {sum(widths)} candidates in {len(widths)} batches of widths "
            f"{', '.join(map(str, widths))}; a candidate takes {sum(map(sum, batches)) / max(sum(widths), 1):.1f} s "
            f"on average; the driver's serial time is {serial_s:.0f} s. The model: {MODEL}.\n\n"
            + md_table(rows, list(rows[0])) + "\n")
    return text, rows


def child(args: argparse.Namespace, spec: str, model: Path, out: Path, workers: int, threads: int | None) -> dict:
    """One search in a fresh process (so each starts TensorFlow with its own thread count)."""
    code = f"""
import json, time
import edgekit
from edgekit.data import load_dataset
from edgekit.optimize import OptimizeConfig, optimize
ds = load_dataset({spec!r}, seed=0, limit={args.limit}, val_split=0.5)
cfg = OptimizeConfig(max_accuracy_drop={args.max_accuracy_drop}, budget_minutes={args.budget_minutes})
t0 = time.perf_counter()
res = optimize({str(model)!r}, ds, cfg, {str(out)!r}, force=True, workers={workers},
               ray_address={'"local"' if threads else None}, worker_threads={threads})
print("RESULT" + json.dumps({{"seconds": time.perf_counter() - t0, "keys": [c["key"] for c in res.candidates],
      "winner": res.winner["key"] if res.winner else None, "raw": res.winner["raw_bytes"] if res.winner else None,
      "gzip": res.winner["gzip_bytes"] if res.winner else None, "holdout_drop": res.report["holdout"]["drop_pt"],
      "met": res.met, "search_s": res.report["seconds"],
      "candidates": [{{"batch": c.get("batch"), "seconds": c["seconds"]}} for c in res.candidates
                     if not c["candidate"]["baseline"]],
      "baseline_s": sum(c["seconds"] for c in res.candidates if c["candidate"]["baseline"])}}))
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    line = next((x for x in p.stdout.splitlines() if x.startswith("RESULT")), None)
    if line is None:
        raise SystemExit(f"search failed: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}")
    import json

    return json.loads(line[len("RESULT"):])


def dry(args: argparse.Namespace) -> None:
    """The projection on a synthetic search: checks the model's arithmetic in a second, measures nothing."""
    batches = synthetic_batches(args.candidate_seconds)
    text, _ = projection_text(batches, args.serial_seconds, {})
    print(f"--dry: a synthetic search (no TensorFlow), {args.candidate_seconds:g} s per candidate, "
          f"{args.serial_seconds:g} s serial; nothing measured, nothing saved.\n\n{text}")


def abba(args: argparse.Namespace, spec: str, model: Path, work: Path) -> None:
    """The two Ray searches (one thread per candidate) in the order 1, 2, 2, 1 workers, each in a fresh
    process: a machine whose speed drifts during the benchmark moves both rates alike. Prints each run
    and the ratio of the mean rates; saves nothing."""
    runs = []
    for workers in (1, 2, 2, 1):
        r = child(args, spec, model, work / f"abba{len(runs)}w{workers}", workers, 1)
        runs.append((workers, r))
        print(f"{workers} worker(s): {len(r['keys'])} candidates in {r['search_s'] / 60:.2f} min, "
              f"{60 * len(r['keys']) / r['search_s']:.2f}/min, winner {r['winner']} ({r['raw']:,} B raw), "
              f"holdout drop {r['holdout_drop']:+.2f} pt", flush=True)
    rate = {w: [len(r["keys"]) / r["search_s"] for v, r in runs if v == w] for w in (1, 2)}
    keys = {tuple(r["keys"]) for _, r in runs}
    winners = {r["winner"] for _, r in runs}
    print(f"Machine: {machine()}. Same candidates in all four: {len(keys) == 1}; same winner: {len(winners) == 1}. "
          f"2 workers against 1: {statistics.mean(rate[2]) / statistics.mean(rate[1]):.2f}x (mean rates; "
          f"per pair: {rate[2][0] / rate[1][0]:.2f}x, {rate[2][1] / rate[1][1]:.2f}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-minutes", type=float, default=10.0)
    ap.add_argument("--max-accuracy-drop", type=float, default=1.0)
    ap.add_argument("--limit", type=int, default=4000, help="MNIST images (stratified), half of the rest validates")
    ap.add_argument("--epochs", type=int, default=4, help="training epochs of the reference CNN searched")
    ap.add_argument("--work", default=str(ROOT / "runs" / "bench_optimize_scale"))
    ap.add_argument("--dry", "--quick", action="store_true",
                    help="only the projection, on a synthetic search (no TensorFlow, no Ray, about a second)")
    ap.add_argument("--abba", action="store_true", help="only the two Ray searches, in the order 1, 2, 2, 1 workers")
    ap.add_argument("--candidate-seconds", type=float, default=9.0, help="--dry: seconds per candidate")
    ap.add_argument("--serial-seconds", type=float, default=30.0, help="--dry: the driver's serial seconds")
    args = ap.parse_args()
    if args.dry:
        return dry(args)
    spec = mnist_spec_or_exit()
    work = Path(args.work)
    model = work / "train" / "model.keras"
    if not model.exists():
        subprocess.run([sys.executable, "-m", "edgekit", "train", "--model", "cnn", "--dataset", spec, "--limit",
                        str(args.limit), "--val-split", "0.5", "--epochs", str(args.epochs), "--out",
                        str(model.parent), "--force", "--quiet"], check=True, cwd=ROOT)
    if args.abba:
        return abba(args, spec, model, work)
    rows, results = [], []
    for name, workers, threads in RUNS:
        t0 = time.perf_counter()
        r = child(args, spec, model, work / f"w{workers}t{threads or 0}", workers, threads)
        r["wall_s"] = time.perf_counter() - t0
        results.append(r)
        rows.append({"run": name, "candidates": len(r["keys"]), "search min": f"{r['search_s'] / 60:.2f}",
                     "candidates/min": f"{len(r['keys']) / (r['search_s'] / 60):.2f}", "winner": r["winner"],
                     "raw B": f"{r['raw']:,}" if r["raw"] else "-", "gzip B": f"{r['gzip']:,}" if r["gzip"] else "-",
                     "holdout drop (pt)": f"{r['holdout_drop']:+.2f}"})
        print(rows[-1], flush=True)
    one, two = results[1], results[2]
    n = min(len(one["keys"]), len(two["keys"]))
    same = one["keys"][:n] == two["keys"][:n]
    rate1, rate2 = (len(r["keys"]) / r["search_s"] for r in (one, two))
    speedup = rate2 / rate1
    batches = batches_of(one["candidates"])
    serial = one["search_s"] - sum(map(sum, batches))  # the baseline's job and everything the driver does itself
    proj, _ = projection_text(batches, serial, {1: 60 * rate1, 2: 60 * rate2})
    text = (f"# optimize with more workers\n\nMachine: {machine()}. The reference CNN trained {args.epochs} epochs on "
            f"{args.limit} MNIST images (half validation), `--max-accuracy-drop {args.max_accuracy_drop:g} "
            f"--budget-minutes {args.budget_minutes:g}`, each search in a fresh process. "
            "`python benchmarks/optimize_scale.py`.\n\n" + md_table(rows, list(rows[0])) +
            f"\n\nSame candidates, in the same order, with 1 and 2 Ray workers (1 thread each): **{same}** "
            f"(first {n}); same winner: **{one['winner'] == two['winner']}**; holdout drop "
            f"{one['holdout_drop']:+.2f} vs {two['holdout_drop']:+.2f} pt. 2 workers against 1 at one thread each: "
            f"**{speedup:.2f}x** candidates per minute. The search asks batches of candidates it decides on "
            "together (docs/optimize.md), the same with any number of workers.\n\n" + proj)
    print(text)
    save("optimize_scale.md", text)


if __name__ == "__main__":
    main()
