"""The micro firmware bundle: op resolver, I/O constants, main.cc (compiled against stub TFLM headers
that declare the real API, or the real headers when EDGEKIT_TFLM_ROOT points at a tflite-micro
checkout), the manifest's file list and the host-latency caveat."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import InputError
from edgekit.export.micro_example import float_literal
from edgekit.export.micro_ops import OP_METHODS, ops_header, resolver_methods
from edgekit.formats.tflite_flatbuffer import read_tflite

GXX = shutil.which("g++") or shutil.which("c++")
needs_gxx = pytest.mark.skipif(GXX is None, reason="no C++ compiler")

# MicroMutableOpResolver's methods as tensorflow/lite/micro/micro_mutable_op_resolver.h spells them
# (typed apart from edgekit's table, so a misspelt method there fails to compile here)
TFLM_METHODS = dict(pair.split(":") for pair in """
ABS:AddAbs ADD:AddAdd ADD_N:AddAddN ARG_MAX:AddArgMax ARG_MIN:AddArgMin ASSIGN_VARIABLE:AddAssignVariable
AVERAGE_POOL_2D:AddAveragePool2D BATCH_MATMUL:AddBatchMatMul BATCH_TO_SPACE_ND:AddBatchToSpaceNd
BROADCAST_ARGS:AddBroadcastArgs BROADCAST_TO:AddBroadcastTo CALL_ONCE:AddCallOnce CAST:AddCast CEIL:AddCeil
CONCATENATION:AddConcatenation CONV_2D:AddConv2D COS:AddCos CUMSUM:AddCumSum DEPTH_TO_SPACE:AddDepthToSpace
DEPTHWISE_CONV_2D:AddDepthwiseConv2D DEQUANTIZE:AddDequantize DIV:AddDiv DYNAMIC_UPDATE_SLICE:AddDynamicUpdateSlice
ELU:AddElu EMBEDDING_LOOKUP:AddEmbeddingLookup EQUAL:AddEqual EXP:AddExp EXPAND_DIMS:AddExpandDims FILL:AddFill
FLOOR:AddFloor FLOOR_DIV:AddFloorDiv FLOOR_MOD:AddFloorMod FULLY_CONNECTED:AddFullyConnected GATHER:AddGather
GATHER_ND:AddGatherNd GREATER:AddGreater GREATER_EQUAL:AddGreaterEqual HARD_SWISH:AddHardSwish IF:AddIf
L2_NORMALIZATION:AddL2Normalization L2_POOL_2D:AddL2Pool2D LEAKY_RELU:AddLeakyRelu LESS:AddLess
LESS_EQUAL:AddLessEqual LOG:AddLog LOG_SOFTMAX:AddLogSoftmax LOGICAL_AND:AddLogicalAnd LOGICAL_NOT:AddLogicalNot
LOGICAL_OR:AddLogicalOr LOGISTIC:AddLogistic MAX_POOL_2D:AddMaxPool2D MAXIMUM:AddMaximum MEAN:AddMean
MINIMUM:AddMinimum MIRROR_PAD:AddMirrorPad MUL:AddMul NEG:AddNeg NOT_EQUAL:AddNotEqual PACK:AddPack PAD:AddPad
PADV2:AddPadV2 PRELU:AddPrelu QUANTIZE:AddQuantize READ_VARIABLE:AddReadVariable REDUCE_MAX:AddReduceMax REDUCE_MIN:AddReduceMin
RELU:AddRelu RELU6:AddRelu6 RESHAPE:AddReshape RESIZE_BILINEAR:AddResizeBilinear
RESIZE_NEAREST_NEIGHBOR:AddResizeNearestNeighbor REVERSE_V2:AddReverseV2 ROUND:AddRound RSQRT:AddRsqrt
SELECT_V2:AddSelectV2 SHAPE:AddShape SIN:AddSin SLICE:AddSlice SOFTMAX:AddSoftmax
SPACE_TO_BATCH_ND:AddSpaceToBatchNd SPACE_TO_DEPTH:AddSpaceToDepth SPLIT:AddSplit SPLIT_V:AddSplitV SQRT:AddSqrt
SQUARE:AddSquare SQUARED_DIFFERENCE:AddSquaredDifference SQUEEZE:AddSqueeze STRIDED_SLICE:AddStridedSlice
SUB:AddSub SUM:AddSum SVDF:AddSvdf TANH:AddTanh TRANSPOSE:AddTranspose TRANSPOSE_CONV:AddTransposeConv
UNIDIRECTIONAL_SEQUENCE_LSTM:AddUnidirectionalSequenceLSTM UNPACK:AddUnpack VAR_HANDLE:AddVarHandle
WHILE:AddWhile ZEROS_LIKE:AddZerosLike
""".split())

RESOLVER_STUB = """#pragma once
#include <cstring>
typedef enum TfLiteStatus { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
namespace tflite {
class MicroOpResolver { public: virtual ~MicroOpResolver() = default; };
template <unsigned int tOpCount>
class MicroMutableOpResolver : public MicroOpResolver {
 public:
  const char* registered[tOpCount];
  unsigned int count = 0;
%METHODS%
 private:
  TfLiteStatus Register(const char* op) {  // as TFLM: a duplicate or one past tOpCount fails
    for (unsigned int i = 0; i < count; ++i) if (std::strcmp(registered[i], op) == 0) return kTfLiteError;
    if (count >= tOpCount) return kTfLiteError;
    registered[count++] = op;
    return kTfLiteOk;
  }
};
}  // namespace tflite
"""
STUBS = {  # declarations with the real headers' names and signatures
    "tensorflow/lite/schema/schema_generated.h": """#pragma once
#include <cstdint>
namespace tflite {
struct Model { uint32_t version() const; };
inline const Model* GetModel(const void* buf) { return static_cast<const Model*>(buf); }
}  // namespace tflite
""",
    "tensorflow/lite/micro/micro_interpreter.h": """#pragma once
#include <cstddef>
#include <cstdint>
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"
typedef union TfLitePtrUnion { int32_t* i32; float* f; char* raw; int8_t* int8; uint8_t* uint8; int16_t* i16;
                               void* data; } TfLitePtrUnion;
typedef struct TfLiteTensor { int type; TfLitePtrUnion data; } TfLiteTensor;
namespace tflite {
class MicroResourceVariables;
class MicroProfilerInterface;
class MicroInterpreter {
 public:
  MicroInterpreter(const Model* model, const MicroOpResolver& op_resolver, uint8_t* tensor_arena,
                   size_t tensor_arena_size, MicroResourceVariables* resource_variables = nullptr,
                   MicroProfilerInterface* profiler = nullptr, bool preserve_all_tensors = false);
  TfLiteStatus AllocateTensors();
  TfLiteStatus Invoke();
  TfLiteTensor* input(size_t index);
  TfLiteTensor* output(size_t index);
};
}  // namespace tflite
""",
    "tensorflow/lite/micro/micro_log.h": "#pragma once\nvoid MicroPrintf(const char* format, ...);\n",
    "tensorflow/lite/micro/system_setup.h": "#pragma once\nnamespace tflite { void InitializeTarget(); }\n",
}
DRIVER = """#include <cstdio>
#include "model_ops.h"
int main() {
  edgekit::OpResolver resolver;
  if (edgekit::RegisterOps(resolver) != kTfLiteOk) return 3;
  for (unsigned int i = 0; i < resolver.count; ++i) std::printf("%s\\n", resolver.registered[i]);
  return 0;
}
"""


def write_stubs(root: Path, methods: dict[str, str] = TFLM_METHODS) -> Path:
    """Stub TFLM headers under ``root``: a resolver whose ``methods`` record the op they add."""
    body = "\n".join(f'  TfLiteStatus {m}() {{ return Register("{op}"); }}' for op, m in methods.items())
    files = {**STUBS, "tensorflow/lite/micro/micro_mutable_op_resolver.h": RESOLVER_STUB.replace("%METHODS%", body)}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def gxx(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([GXX, "-std=c++17", "-Wall", "-Wextra", "-Werror", *map(str, args)],
                       capture_output=True, text=True, timeout=180)
    if check and r.returncode:
        raise AssertionError(r.stderr[-3000:])
    return r


def macros(header: str) -> dict[str, str]:
    return dict(re.findall(r"^#define (EDGEKIT_\w+) (.+)$", header, re.M))


def number(text: str) -> float:
    return float(text.strip("()").rstrip("uf"))


@pytest.fixture(scope="module")
def bundle(exported_all) -> Path:
    return exported_all.out_dir / "micro"


# -- without an export ------------------------------------------------------------------------------

def test_every_mapped_op_has_the_tflm_method_name():
    assert OP_METHODS == {op: TFLM_METHODS[op] for op in OP_METHODS}
    brief = {"CONV_2D": "AddConv2D", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "FULLY_CONNECTED": "AddFullyConnected",
             "SOFTMAX": "AddSoftmax", "RESHAPE": "AddReshape", "MAX_POOL_2D": "AddMaxPool2D",
             "AVERAGE_POOL_2D": "AddAveragePool2D", "QUANTIZE": "AddQuantize", "DEQUANTIZE": "AddDequantize",
             "MEAN": "AddMean", "ADD": "AddAdd", "MUL": "AddMul", "PAD": "AddPad", "HARD_SWISH": "AddHardSwish",
             "LOGISTIC": "AddLogistic", "RELU": "AddRelu", "RELU6": "AddRelu6", "CONCATENATION": "AddConcatenation"}
    assert {op: OP_METHODS[op] for op in brief} == brief


def test_every_mapped_op_is_a_kernel_of_the_installed_tflm():
    tflm = pytest.importorskip("tflite_micro")
    so = next(Path(tflm.__file__).parent.rglob("_runtime*.so"), None)
    if so is None:
        pytest.skip("the tflite_micro package ships no _runtime library")
    data = so.read_bytes()
    missing = [op for op in OP_METHODS if f"Register_{op}Ev".encode() not in data]
    assert not missing, f"no TFLM kernel registration for {missing}"


def test_an_op_without_a_tflm_method_is_one_error_line_naming_it():
    with pytest.raises(InputError) as e:
        resolver_methods(["CONV_2D", "CUSTOM:MyOp", "BITWISE_XOR"])
    msg = str(e.value)
    assert "\n" not in msg and "CUSTOM:MyOp" in msg and "BITWISE_XOR" in msg and "CONV_2D" not in msg


def test_float_literals_parse_back_to_the_same_float32():
    for x in [0.00390625, 0.003921568859368563, 1.0, 0.1, 1e-8, 123.456, *np.random.default_rng(0).random(50)]:
        lit = float_literal(x)
        assert lit.endswith("f") and np.float32(float(lit[:-1])) == np.float32(x), lit


@needs_gxx
def test_a_misspelt_method_fails_to_compile(tmp_path):
    (tmp_path / "model_ops.h").write_text(ops_header(["CONV_2D", "SOFTMAX"]))
    (tmp_path / "d.cc").write_text(DRIVER)
    wrong = {**TFLM_METHODS, "SOFTMAX": "AddSoftMax"}
    r = gxx("-fsyntax-only", "-I", write_stubs(tmp_path / "stubs", wrong), "-I", tmp_path, tmp_path / "d.cc",
            check=False)
    assert r.returncode != 0 and "AddSoftmax" in r.stderr


# -- the exported bundle ----------------------------------------------------------------------------

def test_bundle_files_are_listed_in_micro_json_and_the_manifest(exported_all, bundle):
    from edgekit.manifest import load_manifest

    info = exported_all.outputs["micro"].info
    want = {"micro/model_int8.tflite", "micro/model_data.cc", "micro/model_data.h", "micro/model_ops.h",
            "micro/main.cc", "micro/micro.json"}
    assert set(info["files"]) == want and {f.path for f in exported_all.outputs["micro"].files} == want
    assert all((exported_all.out_dir / p).is_file() for p in want)
    man = load_manifest(exported_all.out_dir)
    listed = {a["path"] for a in man["artifacts"] if a["stage"] == "export" and a.get("target") == "micro"}
    assert listed == want
    assert man["stages"]["export"]["metrics"]["micro"]["files"] == info["files"]


def test_resolver_holds_exactly_the_models_ops(bundle):
    g = read_tflite(bundle / "model_int8.tflite")
    ops = sorted(g.op_counts())
    header = (bundle / "model_ops.h").read_text()
    assert int(macros(header)["EDGEKIT_NUM_OPS"]) == len(ops) >= 4
    assert "tflite::MicroMutableOpResolver<EDGEKIT_NUM_OPS>" in header
    assert re.findall(r"resolver\.(Add\w+)\(\)", header) == [TFLM_METHODS[op] for op in ops]


@needs_gxx
def test_resolver_registers_every_op_once_within_n(bundle, tmp_path):
    (tmp_path / "d.cc").write_text(DRIVER)
    exe = tmp_path / "d"
    gxx("-I", write_stubs(tmp_path / "stubs"), "-I", bundle, tmp_path / "d.cc", "-o", exe)
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30, check=True).stdout.split()
    assert sorted(out) == sorted(read_tflite(bundle / "model_int8.tflite").op_counts())


def test_io_constants_are_the_flatbuffers_quantization(exported_all, bundle):
    g = read_tflite(bundle / "model_int8.tflite")
    m = macros((bundle / "model_data.h").read_text())
    info = exported_all.outputs["micro"].info
    for prefix, t in (("INPUT", g.input_tensors[0]), ("OUTPUT", g.output_tensors[0])):
        assert np.float32(number(m[f"EDGEKIT_{prefix}_SCALE"])) == np.float32(t.scale[0])
        assert int(number(m[f"EDGEKIT_{prefix}_ZERO_POINT"])) == t.zero_point[0]
        assert m[f"EDGEKIT_{prefix}_SHAPE"] == "{" + ", ".join(map(str, t.shape)) + "}"
        assert int(m[f"EDGEKIT_{prefix}_ELEMENTS"]) == int(np.prod(t.shape))
        assert m[f"EDGEKIT_{prefix}_DTYPE"] == f'"{t.dtype}"' == '"int8"'
        assert info[prefix.lower()]["zero_point"] == t.zero_point[0]
    assert int(number(m["EDGEKIT_TENSOR_ARENA_SIZE"])) == info["arena_bytes"]
    assert int(number(m["EDGEKIT_MODEL_DATA_LEN"])) == (bundle / "model_int8.tflite").stat().st_size


@needs_gxx
def test_main_example_compiles_against_the_tflm_api(exported_all, bundle, tmp_path):
    stubs = write_stubs(tmp_path / "stubs")
    gxx("-fsyntax-only", "-I", stubs, "-I", bundle, bundle / "main.cc")
    src = (bundle / "main.cc").read_text()
    for call in ("edgekit::RegisterOps(resolver)", "tflite::MicroInterpreter interpreter(model, resolver, g_arena, "
                 "EDGEKIT_TENSOR_ARENA_SIZE)", "AllocateTensors()", "Invoke()", "QuantizeInput(g_sample[i])",
                 "DequantizeOutput(out[i])"):
        assert call in src, call
    label = exported_all.outputs["micro"].info["example_class"]
    assert label is not None and f"#define EDGEKIT_SAMPLE_CLASS {label}\n" in src
    c = tmp_path / "h.c"  # the data header stays plain C
    c.write_text('#include "model_data.h"\nint main(void) { return EDGEKIT_INPUT_ZERO_POINT + g_model_data[0]; }\n')
    subprocess.run(["gcc" if shutil.which("gcc") else GXX, "-fsyntax-only", "-x", "c", "-I", str(bundle), str(c)],
                   check=True, capture_output=True, timeout=60)


@needs_gxx
@pytest.mark.skipif(not os.environ.get("EDGEKIT_TFLM_ROOT"), reason="set EDGEKIT_TFLM_ROOT to a tflite-micro checkout")
def test_main_example_compiles_against_real_tflm_headers(bundle):
    root = Path(os.environ["EDGEKIT_TFLM_ROOT"])
    dl = root / "tensorflow/lite/micro/tools/make/downloads"
    gxx("-fsyntax-only", "-DTF_LITE_STATIC_MEMORY", "-Wno-error", "-I", root, "-I", dl / "flatbuffers/include",
        "-I", dl / "gemmlowp", "-I", bundle, bundle / "main.cc")


def test_host_micro_latency_carries_the_host_caveat(exported_all):
    entry = exported_all.validation.targets["micro"]
    assert "not board latency" in entry["latency_note"] and "host" in entry["latency_note"]
    assert all("latency_note" not in e for n, e in exported_all.validation.targets.items() if n != "micro")
    md = (exported_all.out_dir / "validation.md").read_text()
    assert f"micro latency: {entry['latency_note']}." in md
