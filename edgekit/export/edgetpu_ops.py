"""The highest TFLite builtin operator version that ``edgetpu_compiler`` 16 accepts.

The compiler parses a model with the TFLite op resolver it was built with. An operator code
whose version is newer than that resolver knows ends compilation for the *whole* model::

    Edge TPU Compiler version 16.0.384591198
    ERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'. An older version of this
    builtin might be supported. Are you using an old TFLite binary with a newer model?
    ERROR: Registration failed.
    Invalid model: model.tflite
    Model could not be parsed

How the numbers were derived (see the report of the branch that added this module):

1. The runtime shipped with compiler 16 (Coral "grouper" release, July 2021: libedgetpu 16,
   tflite_runtime 2.5.0.post1) is built on TensorFlow 2.5.0. ``workspace.bzl`` of
   google-coral/libedgetpu says so: "TF release 2.5.0 as of 05/17/2021", commit a4dfb8d1.
   https://github.com/google-coral/libedgetpu/blob/master/workspace.bzl
2. TensorFlow's own table of which runtime first runs each (op, version):
   ``FindMinimumRuntimeVersionForOp`` in tensorflow/lite/tools/versioning/runtime_version.cc
   https://github.com/tensorflow/tensorflow/blob/master/tensorflow/lite/tools/versioning/runtime_version.cc
   Each entry below is the highest version whose minimum runtime is <= 2.5.0; the comment
   after it names the next version and the runtime that introduced it.
3. Every refusal reported against compiler 16.0.384591198 fits that cut-off:
   CONV_2D v6 (runtime 2.9.0)          google-coral/edgetpu#631
   TRANSPOSE_CONV v4 (after 2.10)      google-coral/edgetpu#845
   QUANTIZE v3 (runtime 2.7.0)         google-coral/edgetpu#879
   EXP v2 (int8 EXP, after 2.10)       google-coral/libedgetpu#71
   and RSQRT v2 (2.5.0), refused by compiler 15, is one a maintainer points to compiler 16 for
   (google-coral/edgetpu#384).
4. What decides each version is ``GetBuiltinOperatorVersion`` in
   tensorflow/lite/tools/versioning/op_version.cc (e.g. CONV_2D v6 = grouped convolution,
   TRANSPOSE_CONV v4 = fused activation, QUANTIZE v3 = per-channel, EXP v2 = int8 input).

Uncertain, hence conservative: compiler 16 was built around July 2021 (build 384591198),
after TF 2.6 was branched; op versions first run by TF 2.6.0 (ADD v4 int64, MUL v5 int64,
PAD v4 5-D, STRIDED_SLICE v6 ellipsis/new-axis masks) may be accepted by the compiler, but
the 2.5 runtime next to it cannot run them on the CPU. They are flagged here.
"""
from __future__ import annotations

from edgekit.formats.tflite_flatbuffer import builtin_code

COMPILER_VERSION = "16.0"  # the compiler these numbers describe
RUNTIME_CUTOFF = "2.5.0"  # TFLite runtime the compiler 16 release is built on
SOURCES = {
    "runtime_version": "https://github.com/tensorflow/tensorflow/blob/master/tensorflow/lite/tools/versioning/"
                       "runtime_version.cc",
    "op_version": "https://github.com/tensorflow/tensorflow/blob/master/tensorflow/lite/tools/versioning/"
                  "op_version.cc",
    "libedgetpu": "https://github.com/google-coral/libedgetpu/blob/master/workspace.bzl",
    "issue_631": "https://github.com/google-coral/edgetpu/issues/631",
    "issue_845": "https://github.com/google-coral/edgetpu/issues/845",
    "issue_879": "https://github.com/google-coral/edgetpu/issues/879",
    "libedgetpu_71": "https://github.com/google-coral/libedgetpu/issues/71",
    "issue_384": "https://github.com/google-coral/edgetpu/issues/384",
    "supported_ops": "https://coral.ai/docs/edgetpu/models-intro/#supported-operations",
}

# Coral's "Supported operations" list -> TFLite builtin, highest version compiler 16 parses.
# Source of every number: runtime_version.cc (cut-off 2.5.0); "next" is the first refused version.
MAX_VERSIONS: dict[str, int] = {
    "ADD": 3,                      # next: v4 int64 (2.6.0; see "uncertain" above)
    "AVERAGE_POOL_2D": 3,          # v3 int16 (2.3.0)
    "CONCATENATION": 3,            # v3 int16 (2.3.0)
    "CONV_2D": 5,                  # v5 hybrid per-channel (2.4.0); next: v6 grouped conv (2.9.0), #631
    "DEPTHWISE_CONV_2D": 6,        # v6 hybrid per-channel (2.3.0); next: v7 int4 filters
    "EXPAND_DIMS": 1,              # v1 (1.10.0); later versions are not in runtime_version.cc
    "FULLY_CONNECTED": 9,          # v9 asymmetric hybrid (2.3.0); next: v10 int4 weights
    "L2_NORMALIZATION": 2,         # v2 int8 (1.14.0)
    "LOGISTIC": 3,                 # v3 int16 (2.3.0)
    "UNIDIRECTIONAL_SEQUENCE_LSTM": 3,  # Coral "LSTM" (unidirectional only); v3 (2.3.0); next: v4
    "MAXIMUM": 4,                  # v4 (2.3.0)
    "MAX_POOL_2D": 3,              # v3 int16 (2.3.0)
    "MEAN": 3,                     # v3 int16 (2.4.0)
    "MINIMUM": 4,                  # v4 (2.3.0)
    "MUL": 4,                      # v4 int16 (2.3.0); next: v5 int64 (2.6.0; uncertain)
    "PACK": 3,                     # v3 int16 (2.3.0)
    "PAD": 3,                      # v3 int16 (2.4.0); next: v4 > 4-D (2.6.0; uncertain)
    "PRELU": 1,                    # v1 (1.8.0)
    "QUANTIZE": 2,                 # v2 int16 output (1.15.0); next: v3 per-channel (2.7.0), #879
    "REDUCE_MAX": 3,               # v3 int16 (2.5.0)
    "REDUCE_MIN": 3,               # v3 int16 (2.5.0)
    "RELU": 3,                     # v3 int16 (2.5.0)
    "RELU6": 3,                    # v3 int16 (2.5.0)
    "RELU_N1_TO_1": 1,             # v1 (1.5.0)
    "RESHAPE": 1,                  # v1 (1.5.0)
    "RESIZE_BILINEAR": 4,          # v4 int16 (2.5.0); compiler 2.0 refused v3 (edgetpu#45)
    "RESIZE_NEAREST_NEIGHBOR": 4,  # v4 int16 (2.4.0)
    "RSQRT": 2,                    # v2 int8 (2.5.0); compiler 15 refused it (#384)
    "SLICE": 5,                    # v5 > 4-D (2.5.0)
    "SOFTMAX": 3,                  # v3 int16 (2.3.0)
    "SPACE_TO_DEPTH": 2,           # v2 int8 (1.14.0)
    "SPLIT": 4,                    # v4 int16 (2.3.0)
    "SQUEEZE": 2,                  # v2 string (2.5.0)
    "STRIDED_SLICE": 5,            # v5 string (2.5.0); next: v6 ellipsis/new-axis (2.6.0; uncertain)
    "SUB": 5,                      # v5 int16 (2.4.0)
    "SUM": 2,                      # v2 int8 (1.15.0)
    "SQUARED_DIFFERENCE": 2,       # v2 int8 (2.5.0)
    "TANH": 3,                     # v3 int16 (2.3.0)
    "TRANSPOSE": 5,                # v5 int16 (2.4.0)
    "TRANSPOSE_CONV": 3,           # v3 with bias (2.3.0); next: v4 fused activation, #845
}

# Ops the Edge TPU does not run but that still must parse: the compiler refuses the whole
# model for any op version its resolver lacks (EXP v2, libedgetpu#71). Same source and cut-off.
CPU_OP_MAX_VERSIONS: dict[str, int] = {
    "DEQUANTIZE": 4,               # v4 (2.2.0); next: v5 per-channel int8 (2.7.0)
    "EXP": 1,                      # v1 (1.7.0); next: v2 int8, libedgetpu#71
    "LOG": 1,                      # v1 (1.14.0); next: v2 int8
    "CAST": 1,                     # v1 (1.5.0); next: v2 uint32 (2.7.0)
    "ARG_MAX": 2, "ARG_MIN": 2,    # v2 int8 (1.14.0); next: v3 bool (2.9.0)
    "GATHER": 5,                   # v5 batch_dims (2.5.0)
    "BATCH_MATMUL": 4,             # v4 (2.5.0)
    "HARD_SWISH": 1,               # v1 (1.15.0)
    "LEAKY_RELU": 2,               # v2 int16 (2.3.0)
    "DIV": 2,                      # v2 (2.3.0)
    "ABS": 3,                      # v3 (2.5.0); next: v4 (2.6.0)
    "TILE": 2,                     # v2 (2.2.0); next: v3 int8 (2.8.0)
    "SPLIT_V": 2,                  # v2 (2.3.0)
    "DEPTH_TO_SPACE": 2,           # v2 (2.5.0)
    "SPACE_TO_BATCH_ND": 3, "BATCH_TO_SPACE_ND": 3,  # v3 (2.3.0)
    "REVERSE_V2": 3,               # v3 int8 (2.5.0); compiler 15 refused it (edgetpu#340)
    "GATHER_ND": 3,                # v3 (2.5.0)
    "UNPACK": 4,                   # v4 (2.3.0)
    "BROADCAST_TO": 3,             # v3 (2.5.0)
    "REDUCE_PROD": 1,              # v1 (1.11.0); next: v2 int8 (2.6.0)
    "LOG_SOFTMAX": 2,              # v2 int8 (1.14.0)
    "SQRT": 1, "SQUARE": 1, "FLOOR": 1, "ELU": 1, "SELECT_V2": 1,
}


# Builtin operators are numbered in the order TFLite added them. HASHTABLE_SIZE (139) is the last
# whose version 1 a 2.5.0 runtime runs; REDUCE_ALL (140) and everything after it (GELU 150,
# STABLEHLO_* ...) first ran on TF 2.6.0 or later (runtime_version.cc), so compiler 16's resolver
# does not know them at all (inferred from the same cut-off; 140-145 are the "uncertain" 2.6.0 ones).
LAST_KNOWN_BUILTIN = 139


def max_version(op: str) -> int | None:
    """The highest version of builtin ``op`` that edgetpu_compiler 16 parses; None when not tabled."""
    return MAX_VERSIONS.get(op, CPU_OP_MAX_VERSIONS.get(op))


def version_issue(op: str, version: int) -> str | None:
    """Why ``op`` at ``version`` makes edgetpu_compiler 16 refuse the model, or None."""
    major = COMPILER_VERSION.split(".")[0]
    top = max_version(op)
    if top is None:
        code = builtin_code(op)
        if code is None or code <= LAST_KNOWN_BUILTIN:
            return None
        return (f"{op} (builtin {code}) is newer than edgetpu_compiler {major} knows: builtins after "
                f"{LAST_KNOWN_BUILTIN} came after TF {RUNTIME_CUTOFF} (it refuses the whole model: "
                "\"Didn't find op for builtin opcode\")")
    if version <= top:
        return None
    return (f"{op} version {version} > {top}, the highest edgetpu_compiler {major} "
            "accepts (it refuses the whole model: \"Didn't find op for builtin opcode\")")
