"""Installed versions, edgekit's pins, declared-requirement checks and the Python check (metadata only)."""
from __future__ import annotations

import platform
from importlib import metadata
from typing import Any, Iterable, Mapping, Sequence

from edgekit.doctor._common import Finding

# distribution names shown in the version table, in this order (after python)
VERSION_PACKAGES = (
    "edgekit", "tensorflow", "tf-keras", "keras", "tensorflow-model-optimization", "tf2onnx", "onnx",
    "onnxruntime", "ai-edge-litert", "tflite-micro", "numpy", "protobuf", "ml-dtypes",
)
# packages whose declared requirements are checked
REQUIRING_PACKAGES = (
    "edgekit", "tensorflow", "tf-keras", "tensorflow-model-optimization", "tf2onnx", "onnx", "onnxruntime",
    "ai-edge-litert", "tflite-micro",
)
# an unmet requirement on one of these (or any of edgekit's own) is a failure; on others a warning
KEY_PACKAGES = frozenset(VERSION_PACKAGES[1:] + ("flatbuffers", "h5py"))
REQUIRES_PYTHON = ">=3.10,<3.13"  # used when edgekit's own metadata is missing (source tree)


# --------------------------------------------------------------------------- versions

def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def pinned(name: str) -> str:
    """``name`` with edgekit's own specifier (``tensorflow==2.21.0``), for pip commands."""
    try:
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name
    except ImportError:
        return name
    for r in _requires("edgekit") or []:
        req = Requirement(r)
        if canonicalize_name(req.name) == canonicalize_name(name) and not req.marker:
            return f"{req.name}{req.specifier}"
    return name


# --------------------------------------------------------------------------- requirements

def applicable(requirements: Iterable[str]) -> list[Any]:
    """The ``packaging`` Requirements whose markers hold here (no extras)."""
    from packaging.requirements import Requirement

    reqs = [Requirement(text) for text in requirements]
    return [r for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


def unmet_requirements(
    requirements: Iterable[str], installed: Mapping[str, str | None] | None = None,
) -> list[tuple[str, str, str | None]]:
    """``(name, specifier, installed version or None)`` of each requirement that is not met.

    Markers are evaluated for this interpreter with no extras. ``installed`` maps
    distribution names to versions (missing: not installed); None reads the metadata.
    """
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion

    table = None if installed is None else {canonicalize_name(k): v for k, v in installed.items()}
    out = []
    for req in applicable(requirements):
        have = installed_version(req.name) if table is None else table.get(canonicalize_name(req.name))
        try:
            ok = have is not None and req.specifier.contains(have, prereleases=True)
        except InvalidVersion:  # a non-PEP 440 version: nothing to compare
            ok = True
        if not ok:
            out.append((req.name, str(req.specifier), have))
    return out


def check_requirements(
    package: str, requirements: Sequence[str] | None = None, installed: Mapping[str, str | None] | None = None,
) -> Finding:
    """Whether the installed versions satisfy what ``package`` declares (and its Requires-Python).

    ``requirements``/``installed`` default to this environment's metadata (tests pass fakes).
    An unmet requirement of edgekit's own or on a :data:`KEY_PACKAGES` package fails; others warn.
    """
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name

    name = f"deps {package}"
    problems: list[str] = []
    specs: list[str] = []
    other_fix = ""
    severity = "warn"
    if requirements is None:
        requirements = _requires(package)
        if requirements is None:
            return _not_installed(package, name)
        needs_py = metadata.metadata(package).get("Requires-Python")
        if needs_py and not SpecifierSet(needs_py).contains(platform.python_version(), prereleases=True):
            problems.append(f"needs Python {needs_py}, running {platform.python_version()}")
            other_fix = f"use a Python {needs_py} environment"
            severity = "fail"
    for req_name, spec, have in unmet_requirements(requirements, installed):
        problems.append(f"needs {req_name}{spec}, " + (f"installed {have}" if have else "not installed"))
        specs.append(f'"{req_name}{spec}"')
        if package == "edgekit" or canonicalize_name(req_name) in KEY_PACKAGES:
            severity = "fail"
    if problems:
        fix = "; ".join(f for f in (other_fix, "pip install " + " ".join(specs) if specs else "") if f)
        return Finding(name, severity, f"{package}: " + "; ".join(problems), fix)
    n = len(applicable(requirements))
    return Finding(name, "ok", f"{n} requirement{'s' if n != 1 else ''} met")


def check_python() -> Finding:
    """The interpreter fits edgekit's Requires-Python."""
    from packaging.specifiers import SpecifierSet

    try:
        needs = metadata.metadata("edgekit").get("Requires-Python") or REQUIRES_PYTHON
    except metadata.PackageNotFoundError:
        needs = REQUIRES_PYTHON
    have = platform.python_version()
    if SpecifierSet(needs).contains(have, prereleases=True):
        return Finding("python", "ok", f"{have} (edgekit needs {needs})")
    return Finding("python", "fail", f"Python {have}; edgekit and TensorFlow's wheels need {needs}",
                   f"create the environment with a Python {needs} (e.g. python3.11 -m venv .venv)")


# --------------------------------------------------------------------------- helpers

def _requires(package: str) -> list[str] | None:
    try:
        return list(metadata.requires(package) or [])
    except metadata.PackageNotFoundError:
        return None


def _not_installed(package: str, name: str) -> Finding:
    if package == "edgekit":
        return Finding(name, "warn", "edgekit is not installed (running from a source tree?): its pins are unchecked",
                       "pip install -e .")
    return Finding(name, "fail", f"{package} is not installed", f'pip install "{pinned(package)}"')


def _tf_keras_pin() -> str:
    """The tf-keras specifier matching the installed TensorFlow (``tf-keras==2.21.*``), else edgekit's pin."""
    tfv = installed_version("tensorflow")
    if tfv and tfv.count(".") >= 1:
        major, minor = tfv.split(".")[:2]
        return f"tf-keras=={major}.{minor}.*"
    return pinned("tf-keras")
