"""The architectures users bring, through every stage: the real-architecture matrix.

- torchvision mobilenet_v3_small, mobilenet_v2, resnet18, squeezenet1_1, efficientnet_b0 as torch 2.13's
  default exporter writes them (dynamo, opset 20, weights in .onnx.data, dynamic batch) plus one
  ``dynamo=False`` export: the committed, width-reduced fixtures of tests/fixtures/torchvision (trained
  15 epochs on digits at 32x32 RGB by make.py there);
- keras.applications MobileNetV2 (alpha 0.35), MobileNetV3Small, EfficientNetB0 and ResNet50 at full
  width, 32x32 RGB, saved by Keras 3 (trained 2 epochs on the same images in a child process).

Each model: ``edgekit inspect``, then every target exported and validated on its runtime against the
source model (onnxruntime on the original file, Keras 3). Beside edgekit, what a user gets from the
onnx2tf command line by hand on the same file (its float32 .tflite, run on LiteRT at batch 1).

    python benchmarks/real_models.py [--only NAME,NAME] [--skip-keras] [--runs N]

Results: benchmarks/results/real_models.md (with the CPU it ran on).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import machine, md_table, save  # noqa: E402

import numpy as np  # noqa: E402

TARGETS = ("tflite", "tflite-fp16", "tflite-dynamic", "tflite-int8", "edgetpu", "micro", "onnx", "onnx-int8")
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "torchvision"
KERAS = ("mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "resnet50")


def datasets(tmp: Path):
    """digits at 32x32 RGB as npz: the unit-range dataset and the 0..255 one (for Keras models that
    rescale their inputs themselves)."""
    from edgekit.data import load_dataset
    from tests.export.test_real_models import digits_rgb

    x, y = digits_rgb()
    path = tmp / "digits32.npz"
    np.savez(path, x=np.round(x.transpose(0, 2, 3, 1) * 255).astype(np.uint8), y=y)
    return (load_dataset(f"npz:{path}", seed=0), load_dataset(f"npz:{path}", seed=0, preprocess="raw255"),
            x.transpose(0, 2, 3, 1), y)


def inspect_row(path: str, ds) -> dict:
    from edgekit.models.inspect import inspect_model

    t0 = time.perf_counter()
    try:
        rep = inspect_model(path, dataset=ds)
        bad = [t for t, s in rep["targets"].items() if not s["ok"]]
        return {"inspect": "ok" if not bad else "no: " + ", ".join(bad), "inspect_s": time.perf_counter() - t0}
    except Exception as e:  # the matrix records it
        return {"inspect": f"error: {str(e).splitlines()[0][:80]}", "inspect_s": time.perf_counter() - t0}


def export_row(path: str, ds, out: Path, runs: int) -> dict:
    """Every target exported and validated; the row of the matrix."""
    from edgekit.errors import EdgekitError
    from edgekit.validate import ValidateConfig, export_and_validate

    t0 = time.perf_counter()
    try:
        res = export_and_validate(path, ds, list(TARGETS), out, force=True,
                                  validate_config=ValidateConfig(threads=1, runs=runs, probe=False))
        error = ""
    except EdgekitError as e:
        res, error = getattr(e, "result", None), str(e)
        if res is None or res.validation is None:
            return {"error": error[:200], "wall_s": time.perf_counter() - t0}
    t = res.validation.targets
    row = {"wall_s": time.perf_counter() - t0, "failed": ", ".join(sorted(res.failed)) or "-"}

    def cell(name: str, key: str, fmt: str) -> str:
        return format(t[name][key], fmt) if name in t else "-"

    row["float agree %"] = cell("tflite", "agreement_pct", ".2f")
    row["float max|diff|"] = cell("tflite", "max_abs_diff", ".2g")
    row["int8 agree %"] = cell("tflite-int8", "agreement_pct", ".2f")
    row["onnx-int8 agree %"] = cell("onnx-int8", "agreement_pct", ".2f")
    row["micro agree %"] = cell("micro", "agreement_pct", ".2f")
    a = res.outputs["edgetpu"].info.get("analysis") if "edgetpu" in res.outputs else None
    row["Edge TPU ops"] = f"{a['ops_mapped']}/{a['ops_total']}" if a else "-"
    row["TFLM arena B"] = f"{res.outputs['micro'].info['arena_bytes']:,}" if "micro" in res.outputs else "-"
    row["LiteRT float us"] = cell("tflite", "latency_p50_ms", ".4f").replace("-", "-") if "tflite" in t else "-"
    if "tflite" in t:
        row["LiteRT float us"] = f"{t['tflite']['latency_p50_ms'] * 1e3:.1f}"
    if "tflite-int8" in t:
        row["LiteRT int8 us"] = f"{t['tflite-int8']['latency_p50_ms'] * 1e3:.1f}"
    if error and not res.failed:
        row["failed"] = error[:120]
    return row


def onnx2tf_cli(onnx_path: Path, x: np.ndarray, tmp: Path) -> dict:
    """What the onnx2tf command line gives a user by hand (``onnx2tf -i model.onnx``, its defaults):
    wall time and its float32 .tflite against onnxruntime on the holdout, at batch 1 on LiteRT."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    out = tmp / f"cli_{onnx_path.stem}"
    t0 = time.perf_counter()
    r = subprocess.run(["onnx2tf", "-i", str(onnx_path), "-o", str(out), "-n"], capture_output=True, text=True,
                       timeout=900, cwd=tmp)
    wall = time.perf_counter() - t0
    files = sorted(out.glob("*_float32.tflite"))
    if r.returncode != 0 or not files:
        last = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()][-1:] or ["no output"]
        return {"onnx2tf CLI": f"fails: {last[0][:90]}", "cli_s": wall}
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {sess.get_inputs()[0].name: x.transpose(0, 3, 1, 2).astype(np.float32)})[0]
    it = Interpreter(model_path=str(files[0]))
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    got = []
    for k in range(len(x)):
        it.set_tensor(i["index"], x[k : k + 1].astype(np.float32).reshape(i["shape"]))
        it.invoke()
        got.append(it.get_tensor(o["index"]).reshape(-1))
    got = np.stack(got)
    return {"onnx2tf CLI": f"float agree {np.mean(got.argmax(1) == ref.argmax(1)) * 100:.2f}%, "
                           f"max|diff| {np.abs(got - ref).max():.2g}; int8: needs calibration data by hand",
            "cli_s": wall}


AGREEMENT_BAR = 98.0  # int8 top-1 agreement a row must reach, repaired by diagnose when the plain export does not


def repair_row(path: str, ds, out: Path, row: dict, runs: int) -> dict:
    """For a tflite-int8 export below :data:`AGREEMENT_BAR`: what ``edgekit diagnose --fix --repair int16
    --no-leave-one-out --min-agreement 98`` finds (16-bit activations on the layers adding the most noise),
    re-exported and validated like the others."""
    try:
        if float(row.get("int8 agree %", "")) >= AGREEMENT_BAR:
            return {}
    except ValueError:
        return {}
    from edgekit.diagnose import diagnose, propose_fix
    from edgekit.export import ExportConfig
    from edgekit.validate import ValidateConfig, export_and_validate

    t0 = time.perf_counter()
    res = diagnose(path, out / "model_int8.tflite", ds, leave_one_out=False)
    fix = propose_fix(path, res, ds, min_agreement=AGREEMENT_BAR, repair="int16")
    step = export_and_validate(path, ds, ["tflite-int8"], out / "repaired", force=True,
                               export_config=ExportConfig(int16=tuple(fix["int16"])),
                               validate_config=ValidateConfig(threads=1, runs=runs, probe=False))
    m = step.validation.targets["tflite-int8"]
    return {"int8 repaired": f"{m['agreement_pct']:.2f}% with {len(fix['int16'])} layers at 16-bit activations "
                             f"({', '.join(fix['int16'])}; {len(fix['steps'])} re-exports), "
                             f"{m['latency_p50_ms'] * 1e3:.1f} us", "repair_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--skip-keras", action="store_true")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--keras-epochs", type=int, default=2, help="training epochs of the keras.applications models")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    tmp = Path(tempfile.mkdtemp(prefix="edgekit-real-models-"))
    unit, raw255, x_all, y_all = datasets(tmp)
    holdout = unit.x_test
    rows = []
    torch_models = json.loads((FIXTURES / "fixtures.json").read_text())
    for name, facts in torch_models.items():
        if only and name not in only:
            continue
        path = FIXTURES / f"{name}.onnx"
        row = {"model": f"torchvision {name}", "source": facts["exporter"].split(")")[0] + ")",
               "params": f"{facts['params']:,}"}
        row.update(inspect_row(str(path), unit))
        row.update(export_row(str(path), unit, tmp / name, args.runs))
        row.update(repair_row(str(path), unit, tmp / name, row, args.runs))
        row.update(onnx2tf_cli(path, holdout, tmp))
        rows.append(row)
        print(json.dumps(row), flush=True)
    if not args.skip_keras:
        from tests.models.keras_apps import make_keras_apps

        names = [n for n in KERAS if not only or n in only]
        t0 = time.perf_counter()
        facts = make_keras_apps(tmp / "keras", x_all, y_all, names=names, small=False, epochs=args.keras_epochs,
                                timeout_s=3600)
        print(f"keras.applications built and trained in {time.perf_counter() - t0:.0f} s", flush=True)
        for name in names:
            ds = raw255 if facts[name]["input_scale"] == 255.0 else unit
            path = tmp / "keras" / f"{name}.keras"
            row = {"model": f"keras.applications {name}", "source": "Keras 3 .keras",
                   "params": f"{facts[name]['params']:,}",
                   "trained": f"{facts[name]['epochs']} epochs, val {facts[name]['val_accuracy']:.2f}"}
            row.update(inspect_row(str(path), ds))
            row.update(export_row(str(path), ds, tmp / f"k_{name}", args.runs))
            row.update(repair_row(str(path), ds, tmp / f"k_{name}", row, args.runs))
            rows.append(row)
            print(json.dumps(row), flush=True)
    rows = merged(rows, bool(only))
    cols = ["model", "source", "params", "trained", "inspect", "failed", "float agree %", "float max|diff|", "int8 agree %",
            "onnx-int8 agree %", "micro agree %", "Edge TPU ops", "TFLM arena B", "LiteRT float us",
            "LiteRT int8 us", "wall_s", "int8 repaired", "repair_s", "onnx2tf CLI", "cli_s"]
    text = (f"# Real architectures through every stage\n\nMachine: {machine()}. Latency: LiteRT batch 1, 1 thread, "
            f"p50 of {args.runs} runs. Data: scikit-learn digits at 32x32 RGB, {len(unit.y_test)} holdout images "
            "(agreement is top-1 against the source model on its own runtime). wall_s: inspect excluded, every "
            "target exported and validated. `python benchmarks/real_models.py`.\n\n" + md_table(rows, cols))
    print(text)
    save("real_models.md", text)


def merged(rows: list[dict], partial: bool) -> list[dict]:
    """``rows`` saved as results/real_models.json; a partial run (``--only``) replaces its models' rows in
    what was saved and keeps the others."""
    from benchmarks._common import RESULTS

    path = RESULTS / "real_models.json"
    if partial and path.is_file():
        new = {r["model"]: r for r in rows}
        old = json.loads(path.read_text())
        rows = [new.pop(r["model"], r) for r in old] + list(new.values())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1) + "\n")
    return rows


if __name__ == "__main__":
    main()
