"""The PyTorch walkthrough as typed: examples/torch_export.py trains and exports with torch's default
exporter, then `edgekit export` builds and validates the edge targets from that file."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_torch_walkthrough_as_typed(tmp_path):
    pytest.importorskip("torch", reason="the walkthrough needs the torch extra: pip install -e '.[torch]'")
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}  # a user's own process
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "torch_export.py")], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "digits_cnn.onnx").is_file() and (tmp_path / "digits_cnn.onnx.data").is_file()
    from click.testing import CliRunner

    from edgekit.cli.main import cli

    out = tmp_path / "runs" / "torch-cnn"
    res = CliRunner().invoke(cli, ["export", str(tmp_path / "digits_cnn.onnx"), "--dataset", "digits",
                                   "--target", "tflite", "--target", "tflite-int8", "--target", "edgetpu",
                                   "--target", "micro", "--target", "onnx-int8", "--out", str(out), "--runs", "5"])
    assert res.exit_code == 0, res.output[-3000:]
    t = json.loads((out / "validation.json").read_text())["targets"]
    assert t["tflite"]["agreement_pct"] == 100.0 and t["tflite"]["max_abs_diff"] <= 1e-4 * t["tflite"]["output_scale"]
    assert t["tflite"]["accuracy"] >= 0.85  # the CNN learned the digits
    for name in ("tflite-int8", "micro", "onnx-int8"):
        assert t[name]["agreement_pct"] >= 98.0, (name, t[name]["agreement_pct"])
    analysis = json.loads((out / "edgetpu" / "analysis.json").read_text())
    assert analysis["fully_mapped"], analysis["summary"]  # no GATHER left from torch's as_strided flatten
