"""The run manifest (``manifest.json``): versions, dataset, per-stage config/metrics, artifacts.

Several stages may write into one folder; each call merges its stage into the manifest
already there. Gates and reports read only the manifest.

A stage that replaces several files marks the manifest first (:func:`begin_stage`: an
``incomplete`` entry naming it), then replaces its files, then writes the manifest with every
file's sha256 and without the mark (one atomic rename). A run killed in between leaves the
mark, and :func:`load_manifest` refuses such a folder, so readers (gate, report, the stage
cache) never take a mix of old and new files for a result.
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
INCOMPLETE = "incomplete"  # {"stages": [names still writing], "pid", "since"} while a stage replaces its files
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


def load_manifest(path: str | os.PathLike, *, allow_incomplete: bool = False) -> dict[str, Any]:
    """Read a manifest; a missing, unreadable or foreign file raises InputError, and so does one
    marked incomplete (a stage was interrupted while replacing its files) unless ``allow_incomplete``
    (writers merging into it)."""
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
    if not allow_incomplete and INCOMPLETE in data:
        raise InputError(incomplete_message(p.parent, data[INCOMPLETE]))
    return data


def incomplete_message(folder: Path, mark: Any) -> str:
    """The one line that refuses a folder whose stage was interrupted while replacing its files."""
    names = mark.get("stages") if isinstance(mark, dict) else None
    what = "/".join(str(n) for n in names) if isinstance(names, list) and names else "stage"
    return (f"{str(folder)!r} holds an incomplete {what} result (interrupted?); run {what} again into it with "
            "--force, or choose another --out.")


def begin_stage(out_dir: str | os.PathLike, *stages: str) -> None:
    """Mark ``out_dir``'s manifest incomplete for ``stages`` before they replace their files;
    :func:`update_manifest` of each removes its name, and the last one the mark. Stages this
    process marked already keep their place (an export, then the validation of its files)."""
    path = Path(out_dir) / MANIFEST
    man = load_manifest(path, allow_incomplete=True) if path.exists() else _new()
    mark = man.get(INCOMPLETE)
    names = list(mark.get("stages") or []) if isinstance(mark, dict) and mark.get("pid") == os.getpid() else []
    if names and all(s in names for s in stages):
        return  # marked already by this process
    man[INCOMPLETE] = {"stages": names + [s for s in stages if s not in names], "pid": os.getpid(), "since": _now()}
    write_json(path, man)


def drop_stage(out_dir: str | os.PathLike, stage: str, *, finish: bool = False) -> list[str]:
    """Remove ``stage`` and its artifacts from ``out_dir``'s manifest (its files were removed, or no
    longer belong to the files beside them); ``finish``: also from the incomplete mark. Returns
    the paths of the artifacts it listed. Nothing to do without a manifest."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return []
    man = load_manifest(path, allow_incomplete=True)
    arts = man.get("artifacts") if isinstance(man.get("artifacts"), list) else []
    mine = [a for a in arts if isinstance(a, dict) and a.get("stage") == stage]
    man["artifacts"] = [a for a in arts if a not in mine]
    if isinstance(man.get("stages"), dict):
        man["stages"].pop(stage, None)
    if finish:
        _finish(man, stage)
    write_json(path, man)
    return [a["path"] for a in mine if isinstance(a.get("path"), str)]


def is_incomplete(out_dir: str | os.PathLike) -> bool:
    """Whether ``out_dir``'s manifest is marked incomplete (False without a readable manifest)."""
    try:
        return INCOMPLETE in load_manifest(Path(out_dir) / MANIFEST, allow_incomplete=True)
    except InputError:
        return False


def _finish(man: dict[str, Any], stage: str) -> None:
    """Remove ``stage`` from the manifest's incomplete mark, and the mark once no stage is left."""
    mark = man.get(INCOMPLETE)
    if not isinstance(mark, dict):
        man.pop(INCOMPLETE, None)
        return
    left = [s for s in mark.get("stages") or [] if s != stage]
    if left:
        mark["stages"] = left
    else:
        del man[INCOMPLETE]


def _new() -> dict[str, Any]:
    return {"format": FORMAT, "created": _now(), "stages": {}, "artifacts": []}


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return (text[:200] + "...") if len(text) > 200 else (text or type(e).__name__)


def verify_manifest(path: str | os.PathLike) -> list[str]:
    """Names of artifacts whose file is missing or whose sha256 no longer matches.

    InputError when the manifest's ``artifacts`` is not a list of ``{path, sha256}`` entries,
    and when the manifest is marked incomplete (a stage interrupted while replacing its files).
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

    Artifacts are keyed by path: a stage re-run replaces its earlier entries. The stage's
    incomplete mark (:func:`begin_stage`) is removed in the same write.
    """
    out = Path(out_dir)
    path = out / MANIFEST
    man = load_manifest(path, allow_incomplete=True) if path.exists() else _new()
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
    _finish(man, stage)
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
