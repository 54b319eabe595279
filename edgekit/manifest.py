"""The run manifest (``manifest.json``): versions, dataset, per-stage config/metrics, artifacts.

Several stages may write into one folder; each call merges its stage into the manifest
already there. Gates and reports read only the manifest.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from edgekit.artifacts import Artifact, collect, read_json, sha256_file, write_json
from edgekit.errors import InputError

FORMAT = "edgekit-manifest/1"
MANIFEST = "manifest.json"
_PACKAGES = (
    "edgekit", "tensorflow", "tf-keras", "tensorflow-model-optimization", "tf2onnx", "onnx",
    "onnxruntime", "ai-edge-litert", "tflite-micro", "numpy",
)


def finite(v: Any) -> bool:
    """A finite number: not a bool, inf or nan, nor an int too large for a float (a manifest
    from elsewhere may hold any of them)."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def config_hash(config: Any) -> str:
    """A stable hash of a JSON-able config (dict or dataclass with ``to_dict``)."""
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Read a manifest; a missing, unreadable or foreign file raises InputError."""
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST
    try:
        data = read_json(p)
    except FileNotFoundError:
        raise InputError(f"Manifest {str(p)!r} does not exist.") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{str(p)!r} is not a readable JSON manifest: {_one_line(e)}") from None
    except RecursionError:
        raise InputError(f"{str(p)!r} is not a readable JSON manifest: it is nested too deeply.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{str(p)!r} is not an edgekit manifest (format {FORMAT!r} expected).")
    return data


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return (text[:200] + "...") if len(text) > 200 else (text or type(e).__name__)


def verify_manifest(path: str | os.PathLike) -> list[str]:
    """Names of artifacts whose file is missing or whose sha256 no longer matches.

    InputError when the manifest's ``artifacts`` is not a list of ``{path, sha256}`` entries.
    """
    p = Path(path)
    root = p if p.is_dir() else p.parent
    name = str(p / MANIFEST if p.is_dir() else p)
    arts = load_manifest(p).get("artifacts", [])
    if not isinstance(arts, list):
        raise InputError(f"Manifest {name!r} has a malformed artifacts list: a list expected, "
                         f"found {type(arts).__name__}.")
    bad = []
    for i, a in enumerate(arts):
        if not isinstance(a, dict) or not isinstance(a.get("path"), str) or not a["path"] \
                or not isinstance(a.get("sha256"), str):
            raise InputError(f"Manifest {name!r} has a malformed artifacts list: entry {i} needs a path and a "
                             "sha256 string.")
        f = root / a["path"]
        try:
            ok = f.is_file() and sha256_file(f) == a["sha256"]
        except (OSError, ValueError):  # unreadable, or a path with a NUL byte
            ok = False
        if not ok:
            bad.append(a["path"])
    return bad


def update_manifest(
    out_dir: str | os.PathLike,
    stage: str,
    *,
    config: Any = None,
    metrics: dict[str, Any] | None = None,
    artifacts: Iterable[Artifact | dict[str, Any]] = (),
    dataset: Any = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Merge ``stage`` into ``out_dir/manifest.json`` (atomically) and return the manifest.

    Artifacts are keyed by path: a stage re-run replaces its earlier entries.
    """
    out = Path(out_dir)
    path = out / MANIFEST
    man = load_manifest(path) if path.exists() else {"format": FORMAT, "created": _now(), "stages": {}, "artifacts": []}
    man["edgekit_version"] = library_versions().get("edgekit", "unknown")
    man["updated"] = _now()
    man["versions"] = library_versions()
    man["machine"] = {"platform": platform.platform(), "processor": platform.machine(), "cpus": os.cpu_count()}
    if dataset is not None:
        man["dataset"] = dataset.to_dict() if hasattr(dataset, "to_dict") else dataset
    cfg = config.to_dict() if hasattr(config, "to_dict") else config
    entry: dict[str, Any] = {"config": cfg, "config_hash": config_hash(cfg) if cfg is not None else None}
    entry["metrics"] = metrics or {}
    entry.update(extra or {})
    man["stages"][stage] = entry
    new = [a.to_dict() if hasattr(a, "to_dict") else dict(a) for a in artifacts]
    for a in new:
        a.setdefault("stage", stage)
    paths = {a["path"] for a in new}
    man["artifacts"] = [a for a in man["artifacts"] if a["path"] not in paths] + new
    write_json(path, man)
    return man


def write_stage(
    out_dir: str | os.PathLike,
    stage: str,
    files: list[tuple[str, str]],
    *,
    config: Any,
    metrics: dict[str, Any],
    dataset: Any = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record a stage that wrote ``files`` (``(name, kind)`` in ``out_dir``): merge it with
    their sizes and sha256 into ``out_dir/manifest.json``; returns the manifest."""
    return update_manifest(out_dir, stage, config=config, metrics=metrics, artifacts=collect(out_dir, files),
                           dataset=dataset, extra=extra)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
