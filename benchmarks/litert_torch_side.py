"""What litert-torch (Google's PyTorch -> LiteRT converter) gives on the same torchvision models, beside
edgekit's ONNX route (benchmarks/real_models.py).

litert-torch converts an nn.Module, not an ONNX file, so the fixtures' models are rebuilt and retrained by
tests/fixtures/torchvision/make.py's own functions (deterministic: the rebuilt model's outputs are checked
against the committed ONNX file in onnxruntime first). Each is converted to float32 .tflite and run on
LiteRT at batch 1 against onnxruntime on the committed file, on the same 360 holdout images.

It runs in its own virtual environment: litert-torch 0.10 pulls jax, transformers and litert-converter,
which edgekit does not need.

    python -m venv /tmp/lt && /tmp/lt/bin/pip install "torch==2.13.0" litert-torch onnxruntime scikit-learn scipy
    pip download --no-deps torchvision==0.29.1 -d /tmp/tv && unzip -q /tmp/tv/*.whl -d /tmp/tv
    /tmp/lt/bin/python benchmarks/litert_torch_side.py /tmp/tv
"""
from __future__ import annotations

import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "torchvision"


def main() -> None:
    import onnxruntime as ort
    import torch

    spec = importlib.util.spec_from_file_location("make", FIXTURES / "make.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    make.stub_torchvision(Path(sys.argv[1]))
    import litert_torch
    from ai_edge_litert.interpreter import Interpreter

    x, y = make.digits_rgb()
    record = json.loads((FIXTURES / "fixtures.json").read_text())
    epochs = int(record["mobilenet_v3_small"]["epochs"])
    holdout = x[len(x) * 4 // 5:]  # make.py's own validation images
    rows = []
    for i, (name, build) in enumerate(make.builders().items()):
        torch.manual_seed(i)
        model = build()
        make.train(model, x, y, epochs * make.EPOCHS.get(name, 1), i, make.LR.get(name, 3e-3))
        sess = ort.InferenceSession(str(FIXTURES / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        ref = sess.run(None, {sess.get_inputs()[0].name: holdout})[0]
        with torch.no_grad():
            same = float(np.abs(model(torch.from_numpy(holdout)).numpy() - ref).max())
        t0 = time.perf_counter()
        try:
            edge = litert_torch.convert(model.eval(), (torch.from_numpy(holdout[:1]),))
            path = Path(f"/tmp/litert_torch_{name}.tflite")
            edge.export(str(path))
            seconds = time.perf_counter() - t0
            it = Interpreter(model_path=str(path))
            it.allocate_tensors()
            inp, out = it.get_input_details()[0], it.get_output_details()[0]
            got = []
            for k in range(len(holdout)):
                it.set_tensor(inp["index"], holdout[k : k + 1])
                it.invoke()
                got.append(it.get_tensor(out["index"]).reshape(-1))
            got = np.stack(got)
            row = {"model": name, "converts": "yes", "seconds": round(seconds, 1), "input": str([int(d) for d in inp["shape"]]),
                   "agree %": round(float(np.mean(got.argmax(1) == ref.argmax(1)) * 100), 2),
                   "max|diff|": f"{np.abs(got - ref).max():.2g}", "bytes": f"{path.stat().st_size:,}"}
        except Exception as e:  # recorded in the table
            row = {"model": name, "converts": f"no: {str(e).splitlines()[0][:100]}",
                   "seconds": round(time.perf_counter() - t0, 1)}
        row["rebuilt vs fixture max|diff|"] = f"{same:.2g}"
        rows.append(row)
        print(json.dumps(row), flush=True)
    cols = ["model", "converts", "seconds", "input", "agree %", "max|diff|", "bytes", "rebuilt vs fixture max|diff|"]
    lines = [f"# litert-torch {getattr(litert_torch, '__version__', '')} on the torchvision fixtures\n",
             f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
             f"torch {torch.__version__}. Agreement: top-1 of LiteRT (float32 .tflite, batch 1) against onnxruntime "
             f"on the committed ONNX file, {len(holdout)} images.\n",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "benchmarks" / "results" / "litert_torch_side.md").write_text(text)


if __name__ == "__main__":
    main()
