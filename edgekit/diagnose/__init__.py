"""``edgekit diagnose``: per-layer int8 error named by Keras layers, and which layers to keep in float."""
from edgekit.diagnose.api import DiagnoseResult, diagnose
from edgekit.diagnose.fix import propose_fix

__all__ = ["DiagnoseResult", "diagnose", "propose_fix"]
