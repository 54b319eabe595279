"""Compression: pruning, clustering (weight sharing) and quantization-aware training with tfmot.

``compress(model_or_path, dataset, CompressConfig(...), out=...)`` runs prune -> cluster ->
quantize, each a short fine-tune on a copy of the model, and reports accuracy, sparsity,
unique values and shipped sizes per stage. TensorFlow is imported only when it runs.
"""
from edgekit.compress.config import CompressConfig
from edgekit.compress.pipeline import COMPRESS_FILES, CompressResult, compress

__all__ = ["compress", "CompressConfig", "CompressResult", "COMPRESS_FILES"]
