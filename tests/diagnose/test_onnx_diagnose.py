"""diagnose of an onnx-int8 artifact: onnxruntime's intermediate tensors named by Keras layers."""
from __future__ import annotations

import json
import re

import pytest

from edgekit.errors import UsageError


@pytest.fixture(scope="module")
def onnx_diagnosis(planted_model, planted_onnx, digits):
    from edgekit.diagnose import diagnose

    return diagnose(planted_model, planted_onnx[1], digits, samples=200, representative_samples=200)


def test_onnx_layers_are_named_by_keras_layers_and_the_planted_one_ranks_first(onnx_diagnosis, planted_diagnosis):
    r = onnx_diagnosis
    assert r.target == "onnx-int8" and r.drop_pt > 20
    assert {l.name for l in r.layers} == {l.name for l in planted_diagnosis.layers}  # same groups as the .tflite
    assert r.layers[0].name == "bad" and r.layers[0].cosine < 0.5
    assert r.layers[0].nsr_added > 0.5 > max(l.nsr_added for l in r.layers[1:])
    first = next(l for l in r.layers if l.name == "conv_a+bn_a+relu_a")
    assert first.snr_db > 25 and first.dtype == "uint8" and first.scale > 0  # ORT: uint8 activations
    # the fused Conv node (BN folded, ReLU fused); Keras numbers the model (model, model_11, ...) by how
    # many were built before it in this process
    assert re.match(r"model(_\d+)?/conv_a/", first.tensor), first.tensor


def test_onnx_leave_one_out_is_measured_in_onnxruntime(onnx_diagnosis):
    r = onnx_diagnosis
    assert r.reexport_accuracy is not None and abs(r.reexport_accuracy - r.artifact_accuracy) < 0.05
    # onnxruntime also moves the all-zero fused channel of conv_a off 0, which 'bad' multiplies by 1000:
    # no single layer in float recovers here (keeping bad and conv_a both does: tests/diagnose/test_keep_float)
    assert all(l.loo_accuracy is not None and abs(l.recovered_pt) < 5 for l in r.layers)


def test_onnx_keep_float_repair_recovers(planted_model, onnx_diagnosis, digits):
    from edgekit.diagnose.api import Reexport

    x, y = digits.x_test[:200], digits.y_test[:200]
    make = Reexport(planted_model, "onnx-int8", digits.representative(200))
    assert make.accuracy(make(("bad", "relu_a")), x, y) > onnx_diagnosis.reexport_accuracy + 0.4


def test_onnx_int16_repair_is_refused(planted_model, onnx_diagnosis, digits):
    from edgekit.diagnose import propose_fix

    with pytest.raises(UsageError, match="int16 .* is a tflite-int8 repair") as e:
        propose_fix(planted_model, onnx_diagnosis, digits, repair="int16")
    assert "\n" not in str(e.value)


def test_onnx_diagnose_cli(planted_int8, planted_onnx, tmp_path):
    from click.testing import CliRunner

    from edgekit.cli.main import cli

    model = str(planted_int8[0])
    r = CliRunner().invoke(cli, ["diagnose", model, str(planted_onnx[1]), "--dataset", "digits", "--samples", "100",
                                 "--no-leave-one-out", "--out", str(tmp_path / "d"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[2].startswith("bad ")
    d = json.loads((tmp_path / "d" / "diagnose.json").read_text())
    assert d["target"] == "onnx-int8" and d["layers"][0]["dtype"] == "uint8"
    r = CliRunner().invoke(cli, ["diagnose", model, str(planted_onnx[0]), "--dataset", "digits", "--quiet"])
    assert r.exit_code == 2 and "no quantized nodes: nothing to diagnose" in r.output
    assert len(r.output.strip().splitlines()) == 1
