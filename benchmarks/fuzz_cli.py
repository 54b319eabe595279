"""Fuzz the command line: mutated .tflite, .onnx, .keras, IDX, recipe and manifest files.

Each case mutates one valid seed file (bit flips, truncation, wrong headers, huge dimensions,
structural edits) and runs the command a user would (validate, evaluate/export, evaluate on
idx:DIR, recipe check/show, gate/report). Every case must end in success or a one-line
``Error: ...``; crashes (signals), tracebacks, hangs and any other ending are findings.
The engine is tests/fuzz/ (engine.py runs it; seeds, mutators, cases) (the test suite runs a few hundred cases of it).

    python benchmarks/fuzz_cli.py [--cases 1200] [--seed 0] [--workers 2] [--timeout 180]
    python benchmarks/fuzz_cli.py --seed 0 --only tflite:17 --keep     # replay one case

Exit status 1 when any case crashed, printed a traceback, hung or ended otherwise.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, machine, md_table, save

sys.path.insert(0, str(ROOT))

from tests.fuzz.common import KINDS  # noqa: E402
from tests.fuzz.engine import plan, run_fuzz  # noqa: E402
from tests.fuzz.seeds import build_seeds  # noqa: E402

COLUMNS = ["kind", "inputs tried", "clean errors", "successes", "crashes", "tracebacks", "hangs", "other endings"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1200, help="Total cases, spread evenly over the file kinds.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="Worker processes (each imports TensorFlow once).")
    ap.add_argument("--timeout", type=float, default=180.0, help="Seconds one case may take before it is a hang.")
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"Comma-separated subset of {','.join(KINDS)}.")
    ap.add_argument("--only", action="append", default=[], metavar="KIND:INDEX", help="Run just these cases.")
    ap.add_argument("--keep", action="store_true", help="Keep every case's files (printed folder).")
    ap.add_argument("--errors", action="store_true", help="Also print the distinct clean error messages.")
    ap.add_argument("--no-save", action="store_true", help=f"Do not write {ROOT / 'benchmarks/results/fuzz_cli.md'}.")
    args = ap.parse_args()

    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        ap.error(f"unknown kind(s) {', '.join(unknown)}; expected some of {', '.join(KINDS)}")
    if args.only:
        todo = []
        for item in args.only:
            kind, _, index = item.partition(":")
            if kind not in KINDS or not index.isdigit():
                ap.error(f"--only takes KIND:INDEX, e.g. tflite:17. Received: {item!r}")
            todo.append((kind, int(index)))
    else:
        todo = plan(args.cases, kinds)
    kinds_arg = "" if set(kinds) == set(KINDS) else f" --kinds {','.join(kinds)}"
    work = Path(tempfile.mkdtemp(prefix="edgekit-fuzz-"))
    t0 = time.perf_counter()
    print(f"building seeds in {work / 'seeds'} ...", file=sys.stderr)
    seeds = build_seeds(work / "seeds")
    seed_s = time.perf_counter() - t0
    res = run_fuzz(seeds, todo, seed=args.seed, workers=args.workers, timeout_s=args.timeout, work=work,
                   keep=args.keep, progress=lambda m: print(m, file=sys.stderr, flush=True))
    for f in res.findings:
        print(f.describe() + "\n")
    total = res.total()
    text = (f"# CLI fuzzing: mutated inputs end in success or one error line\n\n"
            f"Machine: {machine()}. `python benchmarks/fuzz_cli.py --cases {len(todo)} --seed {args.seed}{kinds_arg}`: "
            f"{len(todo)} cases over {args.workers} worker processes in {res.seconds:.0f}s "
            f"({len(todo) / res.seconds:.1f} cases/s; seeds built in {seed_s:.0f}s), per-case timeout "
            f"{args.timeout:.0f}s.\n\n"
            + md_table(res.rows(), COLUMNS)
            + f"\nSlowest case {res.slowest[0][0]:.1f}s ({res.slowest[0][1]}: {res.slowest[0][3]}). Largest resident "
              f"memory of any child process (workers, the runtime probes they start, the seed builder): "
              f"{res.peak_rss_mb:,.0f} MB, so no declared size (up to 2^32 per dimension) was allocated.\n"
            + "\nCommands: .tflite/.onnx `edgekit validate FILE --reference model.keras`; .keras `edgekit evaluate` "
              "(a quarter `edgekit export --target tflite`); IDX `edgekit evaluate --dataset idx:DIR`; recipes "
              "`edgekit recipe check|show`; manifests (and the history.json they list) `edgekit gate` / "
              "`edgekit report`; models a user brings (Keras 3 .keras/.h5, a SavedModel folder, an NCHW ONNX file "
              "like torch.onnx.export writes, and a tf2onnx one) `edgekit inspect MODEL` (a fifth with the target "
              "conversions, the rest `--no-targets`; SavedModels sometimes with `--signature`).\n\nMutations: bit flips, byte overwrites, truncation (to 0 bytes too), appended "
              "junk, spliced chunks, wrong magic/headers, boundary int32s; huge/zero/negative dimensions and bad "
              "indices re-serialised into valid flatbuffers and ONNX protos; edited members of the .keras zip "
              "(valid CRCs); .h5 model_config/attribute/weight-dataset edits (valid HDF5); saved_model.pb "
              "edits re-serialised (signature dims/dtypes/tensor names, op types incl. file and PyFunc ops, node "
              "inputs, attributes, dropped functions/signatures/tags) and byte-mutated variables files; IDX headers declaring huge sizes; YAML/JSON tree edits (wrong types, huge numbers, "
              "deleted/renamed/unknown keys), deep nesting, line edits, non-UTF-8 bytes, alias bombs.\n")
    print(text)
    if args.errors:
        for kind, msgs in res.errors.items():
            print(f"## {kind}: {len(msgs)} distinct clean errors")
            for m, n in msgs.most_common():
                print(f"{n:5d}  {m}")
    if args.keep:
        print(f"case files kept under {work / 'cases'}")
    if not args.no_save and not args.only:
        name = "fuzz_cli.md" if not kinds_arg else f"fuzz_cli_{'_'.join(kinds)}.md"
        print(f"saved {save(name, text)}")
    bad = total["crash"] + total["traceback"] + total["hang"] + total["bad_error"]
    print(f"inputs tried {sum(total.values())}, clean errors {total['clean']}, successes {total['success']}, "
          f"crashes {total['crash']}, tracebacks {total['traceback']}, hangs {total['hang']}, "
          f"other endings {total['bad_error']}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
