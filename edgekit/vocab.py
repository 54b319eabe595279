"""The shared vocabulary: names of runtimes, export targets, model formats and run stages.

Registries (runtimes, targets, model formats) are keyed by these strings; code compares
against the constants here instead of spelling the names again.
"""
from __future__ import annotations

# runtimes: what runs an artifact (edgekit.runtimes)
KERAS = "keras"
LITERT = "litert"
ONNXRUNTIME = "onnxruntime"
TFLITE_MICRO = "tflite-micro"
RUNTIMES = (KERAS, LITERT, ONNXRUNTIME, TFLITE_MICRO)

# export targets (edgekit.export)
TFLITE = "tflite"
TFLITE_FP16 = "tflite-fp16"
TFLITE_DYNAMIC = "tflite-dynamic"
TFLITE_INT8 = "tflite-int8"
TFLITE_INT4 = "tflite-int4"  # int4 weights, int8 activations (ai-edge-quantizer; LiteRT only)
EDGETPU = "edgetpu"
MICRO = "micro"
ONNX = "onnx"
ONNX_INT8 = "onnx-int8"
TARGET_NAMES = (TFLITE, TFLITE_FP16, TFLITE_DYNAMIC, TFLITE_INT8, TFLITE_INT4, EDGETPU, MICRO, ONNX, ONNX_INT8)

# model formats a user can bring (edgekit.models.handle)
FORMAT_TF_KERAS = "tf_keras"  # .keras / .h5 written by tf_keras (what edgekit trains)
FORMAT_KERAS3 = "keras3"  # .keras / .h5 written by Keras 3 (TensorFlow 2.16+'s default Keras)
FORMAT_SAVEDMODEL = "savedmodel"  # a TensorFlow SavedModel directory
FORMAT_ONNX = "onnx"  # an .onnx file (e.g. from torch.onnx.export)
MODEL_FORMATS = (FORMAT_TF_KERAS, FORMAT_KERAS3, FORMAT_SAVEDMODEL, FORMAT_ONNX)

# input layouts
NHWC = "NHWC"
NCHW = "NCHW"

# the stages of `edgekit run` (edgekit.stages), in their order; each writes a folder or file of this name
STAGE_SWEEP = "sweep"
STAGE_TRAIN = "train"
STAGE_OPTIMIZE = "optimize"  # the compression search (edgekit.optimize); gives the winning model
STAGE_COMPRESS = "compress"
STAGE_EXPORT = "export"  # export + validate
STAGE_DIAGNOSE = "diagnose"  # per-layer error of the int8 artifact (edgekit diagnose)
STAGE_GATES = "gates"
STAGE_REPORT = "report"
STAGE_NAMES = (STAGE_SWEEP, STAGE_TRAIN, STAGE_OPTIMIZE, STAGE_COMPRESS, STAGE_EXPORT, STAGE_DIAGNOSE, STAGE_GATES,
               STAGE_REPORT)
