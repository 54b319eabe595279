"""``edgekit doctor``: versions of the stack, the combinations known to break, what runs here.

Each check returns :class:`Finding` s (``ok``, ``warn`` or ``fail``, with the fix). ``fail``
means edgekit will not work as installed; ``warn`` marks something optional or slow.
The version table reads package metadata only; the Keras, tfmot and export-target checks
import TensorFlow and run a 4-input Dense model through each converter and runtime
(a few seconds in all).

Modules: ``requirements`` (versions, pins, declared requirements, Python), ``keras_stack``
(tf_keras, the legacy-Keras switch, tfmot), ``targets`` (export targets on the probe model,
edgetpu_compiler, C++ compiler), ``cpu`` (int8 CPU features), ``_common`` (Finding, helpers).
"""
from __future__ import annotations

import platform
import time
import warnings
from typing import Any, Callable

from edgekit.doctor._common import STATUSES, Finding, _guarded
from edgekit.doctor.cpu import INT8_FEATURES, check_cpu
from edgekit.doctor.keras_stack import check_legacy_keras, check_tf_keras, check_tfmot
from edgekit.doctor.requirements import (
    KEY_PACKAGES, REQUIRES_PYTHON, REQUIRING_PACKAGES, VERSION_PACKAGES, _tf_keras_pin, applicable,
    check_python, check_requirements, installed_version, pinned, unmet_requirements,
)
from edgekit.doctor.targets import MAX_DIFF, check_cxx, check_edgetpu_compiler, check_targets

__all__ = [
    "STATUSES", "Finding", "versions", "run_checks", "report",
    "VERSION_PACKAGES", "REQUIRING_PACKAGES", "KEY_PACKAGES", "REQUIRES_PYTHON", "MAX_DIFF", "INT8_FEATURES",
    "installed_version", "pinned", "applicable", "unmet_requirements", "check_requirements", "check_python",
    "check_tf_keras", "check_legacy_keras", "check_tfmot",
    "check_targets", "check_edgetpu_compiler", "check_cxx", "check_cpu",
]


def versions() -> dict[str, str | None]:
    """Python and the stack's versions from package metadata (None: not installed); imports nothing heavy."""
    return {"python": platform.python_version(), **{n: installed_version(n) for n in VERSION_PACKAGES}}


def run_checks(progress: Callable[[str], None] | None = None) -> list[Finding]:
    """Every check, in order; a check that raises becomes a ``fail`` naming the error."""
    out: list[Finding] = []
    steps: list[tuple[str, Callable[[], Any], str]] = [
        ("python", check_python, ""),
        *((f"deps {p}", (lambda p=p: check_requirements(p)), "pip install packaging") for p in REQUIRING_PACKAGES),
        ("tf_keras", check_tf_keras, f'pip install "{_tf_keras_pin()}"'),
        ("legacy keras", check_legacy_keras, f'pip install "{_tf_keras_pin()}"'),
        ("tfmot", check_tfmot, f'pip install "{pinned("tensorflow-model-optimization")}" "{_tf_keras_pin()}"'),
        ("export targets", check_targets, ""),
        ("cpu int8", check_cpu, ""),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fn, fix in steps:
            if progress:
                progress(f"checking {name}")
            _guarded(out, name, fn, fix)
    return out


def report(progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``{"versions", "checks", "ok", "seconds"}``: what ``edgekit doctor --json`` prints."""
    t0 = time.perf_counter()
    found = run_checks(progress)
    return {"versions": versions(), "checks": [f.to_dict() for f in found],
            "ok": not any(f.status == "fail" for f in found), "seconds": round(time.perf_counter() - t0, 2)}
