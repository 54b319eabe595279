"""Files on disk: atomic writes, output folders that refuse to be overwritten, file facts."""
from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from edgekit.errors import OutputExistsError, UsageError
from edgekit.locking import LOCK_FILE, process_dying


@dataclasses.dataclass(frozen=True)
class Artifact:
    """One file an edgekit stage produced."""

    path: str
    kind: str
    bytes: int
    gzip_bytes: int
    sha256: str

    @classmethod
    def from_file(cls, path: str | os.PathLike, kind: str, root: str | os.PathLike | None = None) -> "Artifact":
        p = Path(path)
        data = p.read_bytes()
        rel = os.path.relpath(p, root) if root else str(p)
        return cls(rel, kind, len(data), gzip_size(data), hashlib.sha256(data).hexdigest())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def collect(folder: str | os.PathLike, files: list[tuple[str, str]]) -> list[Artifact]:
    """Artifacts for ``(name, kind)`` files of ``folder``, paths relative to it."""
    root = Path(folder)
    return [Artifact.from_file(root / name, kind, root) for name, kind in files]


def gzip_size(data: bytes) -> int:
    """Bytes of ``data`` after gzip at level 9 (deterministic: mtime 0)."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


TEMP_PREFIX = ".edgekit-tmp."  # + "<pid>.<stem>.<random><suffix>": see remove_stale_temps
# a file where this process lists the folders it writes temporary entries in (NUL-separated), set by
# the supervising parent of the console script, which removes them after a crash (edgekit/cli/supervise.py)
TEMP_FOLDERS_ENV = "EDGEKIT_TEMP_FOLDERS"
_noted: set[str] = set()


def note_temp_folder(folder: str | os.PathLike) -> None:
    """Tell a supervising parent that this process may leave temporary entries in ``folder``."""
    log = os.environ.get(TEMP_FOLDERS_ENV)
    key = os.path.abspath(folder)
    if not log or key in _noted:
        return
    _noted.add(key)
    try:
        with open(log, "a", encoding="utf-8") as f:
            f.write(key + "\0")
    except OSError:
        pass


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary name keeps the file's suffix so writers that dispatch on it (Keras) work,
    and carries this process's id so a later run can remove what a killed one left
    (:func:`remove_stale_temps`). The file is flushed to disk before the rename, so
    ``path`` is always either the old file or the complete new one.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    note_temp_folder(dest.parent)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}.{dest.stem}.", suffix=suffix or dest.suffix,
                               dir=dest.parent)
    os.close(fd)
    os.unlink(tmp)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():
            _fsync(tmp_path)
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.is_dir():
            shutil.rmtree(tmp_path, ignore_errors=True)
        elif tmp_path.exists():
            tmp_path.unlink()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files under ``folder`` whose writing process no longer runs
    (killed mid-write, e.g. by SIGKILL); returns what was removed."""
    removed = []
    for p in Path(folder).rglob(f"{TEMP_PREFIX}*"):
        try:
            pid = int(p.name[len(TEMP_PREFIX):].split(".", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return not process_dying(pid)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` to ``path`` atomically as standard JSON: NaN and +-inf (which JSON has no
    words for; Python would write ``NaN``) become ``null``, also inside numpy values."""
    text = json.dumps(_finite_json(obj), indent=2, sort_keys=False, default=_json_default, allow_nan=False)
    return write_text(path, text + "\n")


def _finite_json(o: Any) -> Any:
    """``o`` with every non-finite float (in dicts, lists, tuples) replaced by None."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite_json(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite_json(v) for v in o]
    return o


def _json_default(o: Any) -> Any:
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return _finite_json(dataclasses.asdict(o))
    if hasattr(o, "tolist"):  # numpy arrays and scalars
        return _finite_json(o.tolist())
    if hasattr(o, "item"):
        return _finite_json(o.item())
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def check_out_dir(out: str | os.PathLike, force: bool = False, expect: tuple[str, ...] = ()) -> Path:
    """Raise when ``out`` is a file or already holds results and ``force`` is false.

    ``expect`` names the files this stage writes; when given, only those count as
    existing results, so several stages may share a folder. Creates nothing.
    """
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise UsageError(f"--out {str(p)!r} is a file, not a folder. Choose a folder path.")
    if p.is_dir() and not force:
        clash = [n for n in expect if (p / n).exists()] if expect else \
            [n.name for n in p.iterdir() if not n.name.startswith(TEMP_PREFIX) and n.name != LOCK_FILE]
        if clash:
            raise OutputExistsError(
                f"Output folder {str(p)!r} already holds {', '.join(sorted(clash)[:3])}. "
                "Use --force to overwrite it, or choose another --out."
            )
    return p


def prepare_out_dir(out: str | os.PathLike, force: bool = False, expect: tuple[str, ...] = ()) -> Path:
    """:func:`check_out_dir`, then create the folder (and clear temp files of killed runs)."""
    p = check_out_dir(out, force, expect)
    p.mkdir(parents=True, exist_ok=True)
    note_temp_folder(p)
    remove_stale_temps(p)
    return p
