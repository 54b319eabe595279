"""Cost of the CI steps: `edgekit gate` and `edgekit report` vs a check that imports TensorFlow.

A CI gate runs on every push, so it must start fast: edgekit's gate reads only the manifest
(and the sha256 of the files it lists) and never imports TensorFlow. Side by side, from a
cold interpreter each time (median of N subprocess runs): `edgekit gate`, `edgekit report`,
`edgekit --help`, and the bare `import tensorflow` any TF-based check would pay first.

    python benchmarks/gate_report.py [--repeats 5] [--run DIR]   # DIR: a real run folder (default: a fabricated one)
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, machine, md_table, save


def wall(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=False, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--run", type=Path, default=None, help="Run folder with manifest.json (default: fabricated).")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="edgekit-bench-"))
    if args.run is None:
        sys.path.insert(0, str(ROOT))
        from tests.gate.fabricate import make_run

        run = make_run(tmp / "run").parent
        source = "fabricated reference-CNN run (3 targets, 4 compression stages, 5 epochs)"
    else:
        run = args.run
        source = str(run)
    exe = [sys.executable, "-m", "edgekit.cli.main"]
    gate = exe + ["gate", str(run / "manifest.json"), "--max-size", "1MB", "--min-agreement", "90"]
    report = exe + ["report", str(run), "--out", str(tmp / "report"), "--force", "-q"]
    rows = [
        {"step": "edgekit --help", "seconds": wall(exe + ["--help"], args.repeats)},
        {"step": "edgekit gate (sha256 + checks)", "seconds": wall(gate, args.repeats)},
        {"step": "edgekit report (md + html, 3 plots)", "seconds": wall(report, args.repeats)},
        {"step": "python -c 'import tensorflow'", "seconds": wall([sys.executable, "-c", "import tensorflow"],
                                                                   args.repeats)},
    ]
    tf_s = rows[-1]["seconds"]
    for r in rows:
        r["vs import tensorflow"] = f"{r['seconds'] / tf_s:.2f}x"
        r["seconds"] = round(r["seconds"], 3)
    html = tmp / "report" / "report.html"
    text = (f"# CI step cost: gate and report\n\nMachine: {machine()}. Source: {source}. "
            f"Median of {args.repeats} cold subprocess runs each.\n\n"
            + md_table(rows, ["step", "seconds", "vs import tensorflow"])
            + f"\nreport.html: {html.stat().st_size:,} bytes, self-contained.\n")
    print(text)
    print(f"saved {save('gate_report.md', text)}")


if __name__ == "__main__":
    main()
