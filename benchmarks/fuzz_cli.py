"""Fuzz the command line: mutated and hostile models, datasets, recipes, manifests and device replies.

Each case mutates one valid seed file (bit flips, truncation, wrong headers, huge dimensions,
structural edits) or builds a hostile input aimed at one hardening (planted file writes, bombs,
non-finite values, special files, lying devices, option-injection URIs), and runs the command a
user would (validate, evaluate/export, inspect, recipe check/show, gate/report, validate --device).
Every case must end in success or a one-line ``Error: ...``; crashes (signals), tracebacks, hangs,
other endings, a hostile input accepted (wrong success), a file in the case's sentinel folder
(files written) and a process tree past 4 GiB are findings.
The engine is tests/fuzz/ (engine.py runs it; seeds, mutators, cases) (the test suite runs a few hundred cases of it).

    python benchmarks/fuzz_cli.py [--cases 1200] [--seed 0] [--workers 2] [--timeout 180]
    python benchmarks/fuzz_cli.py --seed 0 --only tflite:17 --keep     # replay one case

Exit status 1 on any finding.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, machine, md_table, save

sys.path.insert(0, str(ROOT))

from tests.fuzz.common import FINDINGS, KINDS  # noqa: E402
from tests.fuzz.engine import plan, run_fuzz  # noqa: E402
from tests.fuzz.seeds import build_seeds  # noqa: E402

COLUMNS = ["kind", "tried", "clean", "successes", "tracebacks", "signals", "hangs", "wrong successes", "files written",
           "peak RSS (MB)", "other endings", "over 4 GiB"]


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
    rss_where = ", ".join(f"{k} {res.kind_rss_case[k]}" for k in sorted(res.kind_rss_mb, key=res.kind_rss_mb.get,
                                                                          reverse=True)[:3])
    text = (f"# CLI fuzzing: mutated and hostile inputs end in success or one error line\n\n"
            f"Machine: {machine()}. `python benchmarks/fuzz_cli.py --cases {len(todo)} --seed {args.seed}{kinds_arg}`: "
            f"{len(todo)} cases over {args.workers} worker processes in {res.seconds:.0f}s "
            f"({len(todo) / res.seconds:.1f} cases/s; seeds built in {seed_s:.0f}s), per-case timeout "
            f"{args.timeout:.0f}s. Findings: {len(res.findings)}.\n\n"
            + md_table(res.rows(), COLUMNS)
            + f"\nSlowest case {res.slowest[0][0]:.1f}s ({res.slowest[0][1]}: {res.slowest[0][3]}).\n\n"
            + "Outcomes: *clean* a non-zero exit whose last stderr line is the one `Error: ...` line; *signals* the "
              "worker died; *hangs* no answer within the timeout; *other endings* any other failure (no or several "
              "error lines); *wrong successes* exit 0 on a case marked must-fail (every hostile case, and the "
              "mutations that make an input invalid: NaN/inf pixels or latencies, out-of-range labels, a dropped "
              "array, a spoofed CPU class ...); *files written* the case's sentinel folder (where its planted writes "
              "aim: tf.io.write_file in a TFOpLambda, a Keras 3 Lambda, the SavedModel routes, an ssh ProxyCommand) "
              "is not empty afterwards; *peak RSS* the largest per-case peak resident set of the case's process "
              "tree: the worker's VmHWM reset before each case (/proc/self/clear_refs) and read after it, plus the "
              "peak of the children it waited for in that case (RUSAGE_CHILDREN, when it rose), or the parent's "
              "psutil poll of the whole tree every 0.2 s when larger (the workers run the CLI in-process, so "
              f"ru_maxrss alone would span every earlier case); over 4 GiB is a finding. Largest: {rss_where}.\n"
            + "\nCommands: .tflite/.onnx `edgekit validate FILE --reference model.keras`; .keras `edgekit evaluate` "
              "(a quarter `edgekit export --target tflite`); IDX `edgekit evaluate --dataset idx:DIR`; recipes "
              "`edgekit recipe check|show`; manifests (and the history.json they list) `edgekit gate` / "
              "`edgekit report`; models a user brings (Keras 3 .keras/.h5, a SavedModel folder, an NCHW ONNX file "
              "like torch.onnx.export writes, and a tf2onnx one) `edgekit inspect MODEL` (a fifth with the target "
              "conversions, the rest `--no-targets`; SavedModels sometimes with `--signature`); npz "
              "`edgekit evaluate --dataset npz:FILE`; images `edgekit evaluate --dataset images:DIR[,size=28x28,"
              "channels=1]`; device `edgekit validate ARTIFACT --device exec://python fuzz_device.py SPEC` (the "
              "device runs the real runner and edits its reply); hostile models `edgekit inspect|evaluate|export`, "
              "hostile datasets `edgekit evaluate|train --dataset`, hostile devices `edgekit validate --device`.\n\n"
              "Mutations: bit flips, byte overwrites, truncation (to 0 bytes too), appended "
              "junk, spliced chunks, wrong magic/headers, boundary int32s; huge/zero/negative dimensions and bad "
              "indices re-serialised into valid flatbuffers and ONNX protos; edited members of the .keras zip "
              "(valid CRCs); .h5 model_config/attribute/weight-dataset edits (valid HDF5); saved_model.pb "
              "edits re-serialised (signature dims/dtypes/tensor names, op types incl. file and PyFunc ops, node "
              "inputs, attributes, dropped functions/signatures/tags) and byte-mutated variables files; IDX headers "
              "declaring huge sizes; YAML/JSON tree edits (wrong types, huge numbers, deleted/renamed/unknown keys), "
              "deep nesting, line edits, non-UTF-8 bytes, alias bombs; npz members with NaN/inf pixels, bad labels, "
              "other dtypes/shapes, lying .npy headers, object arrays, dropped/extra members; image folders with "
              "damaged, truncated, zero-byte, text or odd-mode images, PNG headers declaring gigapixels, non-image "
              "files, symlinks in and out, empty or nested class folders; device replies byte-mutated, header "
              "tree edits, a forged probe.\n\n"
              "Hostile generators: *hostile_keras* tf_keras .keras/.h5 with a TFOpLambda turned into "
              "tf.io.write_file to the sentinel (or py_function, numpy_function, gfile.copy, print ...), a class "
              "from an arbitrary module, Keras 3 Lambda (marshal'd code writing the sentinel) and foreign-module "
              "layers, NaN/inf kernels (.keras, .h5, Keras 3), config bombs (.keras, .h5, one hidden behind a "
              "TFOpLambda), an HDF5 weights bomb, zip-member bombs and a member lying about its size, a FIFO, "
              "/dev/zero, /dev/null, a folder or a symlink loop as the model file; *hostile_savedmodel* every "
              "planted route of tests/models/savedmodel_builders.save_planted (write_file, tfrecord, side function, "
              "initializer, print, summary, save_v2, py_function) retargeted at the sentinel, a quarter with one "
              "more graph edit; *hostile_onnx* NaN/inf initializers and Constant nodes, zero/negative input and "
              "output dims, fixed batches and low opsets through the int8 targets (these two may succeed), int8 "
              "artifacts validated against another model (chance agreement); *hostile_data* npz and gzip-IDX "
              "bombs, members declaring more than deflate expands to, FIFOs, /dev/zero links, symlinks out of the "
              "folder, NaN/inf pixels, huge/negative labels (npz and IDX), PNGs declaring gigapixels; "
              "*hostile_device* replies with NaN/inf/negative/zero/tiny/huge latencies, a CPU class the device "
              "names itself, NaN outputs, a wrong output count, a wrong protocol, a 64-100 MB reply, a long error "
              "text, and option-injection URIs (ssh -oProxyCommand touching the sentinel, adb -e, control "
              "characters).\n")
    print(text)
    if args.errors:
        for kind, msgs in res.errors.items():
            print(f"## {kind}: {len(msgs)} distinct clean errors")
            for m, n in msgs.most_common():
                print(f"{n:5d}  {m}")
    if args.keep:
        print(f"case files kept under {work / 'cases'}")
    if res.findings:
        text += "\n## Findings\n\n" + "\n".join(
            f"- `{f.case.name}` ({f.outcome}, {f.case.mutation}): `edgekit {' '.join(f.case.args)}` -> "
            f"`{_first_line(f.detail)}`" for f in res.findings) + "\n"
    if not args.no_save and not args.only:
        name = "fuzz_cli.md" if not kinds_arg else f"fuzz_cli_{'_'.join(kinds)}.md"
        print(f"saved {save(name, text)}")
    bad = sum(total[k] for k in FINDINGS)
    print(f"inputs tried {sum(total.values())}, clean errors {total['clean']}, successes {total['success']}, "
          + ", ".join(f"{k} {total[k]}" for k in FINDINGS))
    return 1 if bad else 0


def _first_line(detail: str) -> str:
    """The first output line of a finding (its stderr's, else the first line of the detail)."""
    if "--- stderr ---" in detail:
        stderr = detail.split("--- stderr ---", 1)[1]
        lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("---")]
        if lines:
            return lines[0][:300]
    return next((ln for ln in detail.splitlines() if ln.strip()), "")[:300]


if __name__ == "__main__":
    sys.exit(main())
