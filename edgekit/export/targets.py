"""Every export target: importing a target module registers it in ``base.TARGETS`` (kept apart from
base.py, which the target modules import, so that the two never import each other)."""
from __future__ import annotations

from edgekit.export.base import TARGETS, SimpleTarget
from edgekit.registry import Registry


def load_targets() -> Registry[SimpleTarget]:
    """Import every target module (registration happens on import) and return TARGETS."""
    from edgekit.export import edgetpu, int4, micro, onnx, tflite  # noqa: F401

    return TARGETS
