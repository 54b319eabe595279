"""Edge TPU compatibility analysis from the flatbuffer, partition point, compiler handling."""
from __future__ import annotations

import json

import pytest

from edgekit.errors import ValidationError
from edgekit.export.edgetpu import CACHE_BYTES, analyze_edgetpu, compiler_path, parse_compiler_log


@pytest.fixture(scope="module")
def leaky_model(digits):
    """A small CNN with LeakyReLU, which TFLite int8 supports and the Edge TPU does not."""
    from edgekit._lazy import keras

    k = keras()
    L = k.layers
    k.utils.set_random_seed(0)
    m = k.Sequential([
        k.Input((28, 28, 1)), L.Conv2D(8, 3, activation="relu", name="conv"), L.MaxPooling2D(2, name="pool"),
        L.LeakyReLU(0.1, name="leaky"), L.Conv2D(8, 3, activation="relu", name="conv_b"), L.Flatten(),
        L.Dense(10, activation="softmax", name="out"),
    ])
    m(digits.x_test[:1])
    return m


def test_seed_cnn_is_fully_mapped(exported_all):
    a = analyze_edgetpu(exported_all.path("edgetpu"))
    assert a.fully_mapped and a.partition_index is None and a.model_issues == ()
    assert [v.op for v in a.ops] == ["CONV_2D", "MAX_POOL_2D", "CONV_2D", "MAX_POOL_2D", "CONV_2D", "RESHAPE",
                                     "FULLY_CONNECTED", "FULLY_CONNECTED", "SOFTMAX"]
    assert a.mapped_ops == 9 and a.cpu_ops == 0
    assert all(v.reason == "mapped to Edge TPU" for v in a.ops)
    # parameters: 93,322 weights as int8 + int32 biases (+ shape constants), far below the cache
    assert 93_322 < a.parameter_bytes < 100_000 and a.fits_cache and CACHE_BYTES == 8 * 2**20
    report = json.loads((exported_all.out_dir / "edgetpu/analysis.json").read_text())
    assert report["fully_mapped"] and report["ops_total"] == 9 and len(report["ops"]) == 9
    assert report["compiler"]["status"] in ("ok", "skipped", "failed")
    assert "| 0 | CONV_2D |" in (exported_all.out_dir / "edgetpu/analysis.md").read_text()


def test_unsupported_op_is_flagged_with_partition_point(leaky_model, digits):
    from edgekit.export.convert import to_tflite

    data = to_tflite(leaky_model, "int8", digits.representative(50), batch_size=1)
    a = analyze_edgetpu(data)
    ops = [v.op for v in a.ops]
    cut = ops.index("LEAKY_RELU")
    assert not a.fully_mapped and a.partition_index == cut
    assert a.ops[cut].reason == "operation not supported by the Edge TPU" and not a.ops[cut].supported
    assert all(v.mapped for v in a.ops[:cut])
    assert not any(v.mapped for v in a.ops[cut:])  # it and everything after run on the CPU
    assert a.ops[cut + 1].supported  # the conv after it is supported, but cut off
    assert a.mapped_ops == cut and a.cpu_ops == len(ops) - cut
    p = a.partition()
    assert p["op"] == "LEAKY_RELU" and p["ops_on_cpu"][0] == "LEAKY_RELU"
    assert "cut at op" in a.summary()


def test_float_io_conversions_run_on_cpu_without_cutting_the_graph(trained_cnn, digits):
    from edgekit._lazy import tf

    model = trained_cnn[0]
    spec = tf().TensorSpec((1, 28, 28, 1), tf().float32)
    fn = tf().function(lambda x: model(x, training=False)).get_concrete_function(spec)
    conv = tf().lite.TFLiteConverter.from_concrete_functions([fn], model)
    conv.optimizations = [tf().lite.Optimize.DEFAULT]
    rep = digits.representative(20)
    conv.representative_dataset = lambda: ([rep[i : i + 1]] for i in range(len(rep)))
    conv.target_spec.supported_ops = [tf().lite.OpsSet.TFLITE_BUILTINS_INT8]  # float input/output kept
    a = analyze_edgetpu(bytes(conv.convert()))
    ops = [v.op for v in a.ops]
    assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE"
    assert a.fully_mapped and a.partition_index is None
    assert not a.ops[0].mapped and "before the Edge TPU segment" in a.ops[0].reason
    assert not a.ops[-1].mapped and all(v.mapped for v in a.ops[1:-1])
    assert "2 float input/output conversion" in a.summary()


def test_float_and_dynamic_shapes_are_flagged(exported_all):
    a = analyze_edgetpu(exported_all.path("tflite"))  # float32 with a dynamic batch dimension
    assert a.partition_index == 0 and a.mapped_ops == 0
    assert "dynamic shape" in a.ops[0].reason or "float32" in a.ops[0].reason
    b = analyze_edgetpu(exported_all.path("tflite-dynamic"))
    assert not b.fully_mapped


def test_require_full_mapping_fails_that_target_alone(leaky_model, digits, tmp_path):
    """The edgetpu target fails (nothing of it written); the tflite target beside it is still written;
    alone, the failure is raised and nothing is written."""
    from edgekit.export import ExportConfig, export

    out = tmp_path / "tpu"
    config = ExportConfig(require_full_mapping=True, representative_samples=50)
    res = export(leaky_model, digits, ["edgetpu", "tflite"], out, config=config)
    err = res.failed["edgetpu"]
    assert isinstance(err, ValidationError) and err.metric == "ops_on_cpu" and err.limit == 0
    assert err.value >= 1 and "LEAKY_RELU" in str(err)
    assert list(res.outputs) == ["tflite"] and (out / "model_float32.tflite").is_file()
    assert not (out / "edgetpu").exists()
    with pytest.raises(ValidationError, match="LEAKY_RELU"):
        export(leaky_model, digits, ["edgetpu"], tmp_path / "alone", config=config)
    assert not any(p.is_file() for p in (tmp_path / "alone").rglob("*"))  # nothing half-written


def test_parse_compiler_log():
    log = """Edge TPU Compiler version 16.0.384591198
Model compiled successfully in 73 ms.
Number of operations that will run on Edge TPU: 8
Number of operations that will run on CPU: 1
Operator                       Count      Status
LEAKY_RELU                     1          Operation not supported
"""
    assert parse_compiler_log(log) == {"ops_on_edgetpu": 8, "ops_on_cpu": 1, "version": "16.0.384591198"}


@pytest.mark.skipif(compiler_path() is None, reason="edgetpu_compiler is not on PATH (Coral apt package)")
def test_compiler_maps_the_seed_cnn(exported_all, tmp_path):
    from edgekit.export.edgetpu import run_compiler

    r = run_compiler(exported_all.path("edgetpu"), tmp_path)
    assert r["ops_on_cpu"] == 0 and r["ops_on_edgetpu"] >= 9
    assert (tmp_path / "model_int8_edgetpu.tflite").is_file()


STUB = """#!{python}
import pathlib, shutil, sys
args = sys.argv[1:]
if {fail}:
    print("Internal compiler error. Aborting!", file=sys.stderr)
    sys.exit(1)
out = pathlib.Path(args[args.index("--out_dir") + 1]); model = pathlib.Path(args[-1])
shutil.copy(model, out / (model.stem + "_edgetpu.tflite"))
log = "Edge TPU Compiler version 16.0.384591198\\nNumber of operations that will run on Edge TPU: 9\\n" \\
      "Number of operations that will run on CPU: 0\\n"
(out / (model.stem + "_edgetpu.log")).write_text(log)
print(log)
"""


def _stub(tmp_path, monkeypatch, fail: bool):
    import os
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "edgetpu_compiler"
    exe.write_text(STUB.format(python=sys.executable, fail=fail))
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_compiler_on_path_is_run_and_its_outputs_kept(trained_cnn, digits, tmp_path, monkeypatch):
    """With a stand-in edgetpu_compiler on PATH: argument list, outputs and op counts are used."""
    from edgekit.export import ExportConfig, export

    _stub(tmp_path, monkeypatch, fail=False)
    res = export(trained_cnn[1], digits, ["edgetpu"], tmp_path / "o",
                 config=ExportConfig(representative_samples=20))
    comp = res.outputs["edgetpu"].info["compiler"]
    assert comp["status"] == "ok" and comp["ops_on_edgetpu"] == 9 and comp["ops_on_cpu"] == 0
    assert comp["command"][1:4] == ["--show_operations", "--out_dir", comp["command"][3]]
    files = {f.path for f in res.outputs["edgetpu"].files}
    assert {"edgetpu/model_int8_edgetpu.tflite", "edgetpu/model_int8_edgetpu.log", "edgetpu/compiler.txt"} <= files
    assert all((tmp_path / "o" / f).is_file() for f in files)
    assert json.loads((tmp_path / "o/edgetpu/analysis.json").read_text())["compiler"]["ops_on_edgetpu"] == 9


def test_failing_compiler_fails_the_target_with_its_message(trained_cnn, digits, tmp_path, monkeypatch):
    from edgekit.errors import EdgekitError
    from edgekit.export import ExportConfig, export

    _stub(tmp_path, monkeypatch, fail=True)
    with pytest.raises(EdgekitError, match="exited with 1: Internal compiler error"):
        export(trained_cnn[1], digits, ["edgetpu"], tmp_path / "o",
               config=ExportConfig(representative_samples=20))
    assert not any(p.is_file() for p in (tmp_path / "o").rglob("*"))
