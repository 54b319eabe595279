"""edgekit diagnose on planted bad layers: drop, ranking, and what keep-float and int16 recover.

Two plants on the small functional CNN of tests/diagnose/planted.py, trained on MNIST:
- ``weights``: one input channel of layer ``bad`` is always 0 and gets a huge kernel weight,
  so int8 per-channel weight quantization rounds every other weight of ``bad`` to 0;
- ``activations``: that channel of ``relu_a``'s output is a large constant and ``bad`` ignores
  it (zero weights), so the per-tensor int8 scale of ``relu_a``'s output leaves the other
  channels a few levels: the tensor between ``relu_a`` and ``bad`` is the problem.
For each: the int8 drop (LiteRT; onnx-int8 in onnxruntime), the layer diagnose ranks first,
and the accuracy, size and LiteRT batch-1 latency of repairs (keep-float, int16).

    python benchmarks/diagnose.py [--limit 10000] [--epochs 3]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import machine, md_table, mnist_spec_or_exit, save  # noqa: E402


NOTES = """
## Reading it

- Weight outlier: diagnose ranks `bad` first and keeping it alone in float recovers the whole
  drop (leave-one-out in LiteRT). 16-bit activations do not repair it: its weights stay 8-bit.
  On onnx-int8 the same layer ranks first, but no single layer in float recovers there
  (onnxruntime also moves the all-zero fused channel of conv_a off 0, which `bad` multiplies).
- Activation outlier: the damage shows at `bad` (ranked first), while `relu_a`'s own SNR looks
  fine (its constant channel holds almost all the signal power). The precision is lost on the
  tensor between them, whose int8 scale the outlier sets, so no single layer recovers: both
  `relu_a` and `bad` must be repaired, in float or in int16. `--fix` first adds layers that
  recover alone (none here), then tries the worst-ranked layers with the layers feeding them,
  which finds `relu_a,bad` (tests/diagnose/test_fix_cli.py).
- Cost: keep-float stores that layer's weights as float32 (+3.3 KB here) and runs in a few
  microseconds; int16 adds ~0.5 KB but LiteRT runs 16x8 ops on its builtin reference kernels
  (XNNPACK does not take them), some 30x slower than the int8 model on this CPU.
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--samples", type=int, default=2000)
    args = ap.parse_args()

    from edgekit.data import load_dataset
    from edgekit.diagnose import diagnose
    from edgekit.diagnose.api import Reexport
    from edgekit.runtimes.litert import LiteRTRunner
    from tests.diagnose import planted

    ds = load_dataset(mnist_spec_or_exit(), seed=0, limit=args.limit)
    x, y = ds.x_test[: args.samples], ds.y_test[: args.samples]
    rep = ds.representative(300)
    t0 = time.perf_counter()
    base = planted.build()
    base.fit(ds.x_train, ds.y_train, epochs=args.epochs, batch_size=64, verbose=0)
    train_s = time.perf_counter() - t0
    weights0 = base.get_weights()
    rows, diag_rows = [], []
    plants = {"weights": planted.plant, "activations": planted.plant_activations}
    repairs = {"weights": [("keep_float", ("bad",)), ("int16", ("bad",))],
               "activations": [("keep_float", ("bad",)), ("int16", ("bad",)), ("keep_float", ("relu_a", "bad")),
                               ("int16", ("relu_a", "bad"))]}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, plant in plants.items():
            base.set_weights(weights0)
            model = plant(base)
            path = Path(tmp) / f"{kind}.keras"
            model.save(path)
            float_acc = float((model.predict(x, verbose=0).argmax(1) == y).mean())
            for target, suffix in (("tflite-int8", ".tflite"), ("onnx-int8", ".onnx")):
                make = Reexport(model, target, rep)
                art = Path(tmp) / f"{kind}{suffix}"
                art.write_bytes(make())
                t = time.perf_counter()
                d = diagnose(path, art, ds, samples=min(500, args.samples), representative_samples=300)
                best = max(d.layers, key=lambda r: r.recovered_pt or 0)
                diag_rows.append({"plant": kind, "artifact": target, "float acc": f"{100 * d.float_accuracy:.2f}",
                                  "int8 acc": f"{100 * d.artifact_accuracy:.2f}", "drop (pt)": f"{d.drop_pt:.2f}",
                                  "ranked first": d.layers[0].name, "its SNR (dB)": f"{d.layers[0].snr_db:.1f}",
                                  "best leave-one-out": f"{best.name} {best.recovered_pt:+.1f} pt",
                                  "diagnose s": f"{time.perf_counter() - t:.1f}"})
            make = Reexport(model, "tflite-int8", rep)
            for repair, layers in [("none", ())] + repairs[kind]:
                data = make(**({repair: layers} if layers else {}))
                runner = LiteRTRunner(data)
                acc = float((runner.predict(x).argmax(1) == y).mean())
                lat = runner.latency(x[:1], runs=300)
                rows.append({"plant": kind, "repair": repair, "layers": "+".join(layers) or "-",
                             "accuracy": f"{100 * acc:.2f}", "drop (pt)": f"{100 * (float_acc - acc):.2f}",
                             "bytes": f"{len(data):,}", "p50 (us)": f"{1000 * lat['p50_ms']:.1f}"})
            print(kind, "done", flush=True)
    text = (f"# edgekit diagnose on planted bad layers\n\n{machine()}; measured while other helpers loaded the "
            f"2 cores (latencies are indicative). MNIST {len(ds.x_train):,} train / {args.samples:,} holdout "
            f"images, planted CNN trained {args.epochs} epochs ({train_s:.0f} s); diagnose on "
            f"{min(500, args.samples)} holdout images, calibration 300 training images.\n\n"
            "## Diagnosis (leave-one-out: accuracy recovered keeping one layer group in float)\n\n"
            + md_table(diag_rows, list(diag_rows[0]))
            + "\n## Repairs of the tflite-int8 export (LiteRT, batch 1, 1 thread)\n\n"
            + md_table(rows, list(rows[0])) + NOTES)
    print(save("diagnose.md", text))
    print(text)


if __name__ == "__main__":
    main()
