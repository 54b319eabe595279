"""Export targets (TFLite, Edge TPU, ONNX, TFLite Micro) resolved by name, and ``export``."""
from edgekit.export.api import ExportResult, export, list_targets, resolve_targets
from edgekit.export.base import TARGETS, ExportConfig, ExportContext, Target, TargetOutput
from edgekit.export.targets import load_targets

__all__ = ["TARGETS", "ExportConfig", "ExportContext", "ExportResult", "Target", "TargetOutput", "export",
           "list_targets", "load_targets", "resolve_targets"]
