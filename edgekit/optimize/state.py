"""The resume state of a search: ``OUT/optimize_state.json``, written (atomically) after the
baseline, the sensitivity and every candidate. A re-run with the same settings replays the search
and takes every result already in it instead of evaluating again; other settings are refused."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edgekit.artifacts import read_json, write_json
from edgekit.errors import InputError, UsageError

STATE_FILE = "optimize_state.json"


class StateMismatch(UsageError):
    """The output folder holds the state of a search with other settings."""
FORMAT = "edgekit-optimize-state/1"


@dataclasses.dataclass
class SearchState:
    """What a search has measured so far: keyed by the search's identity (``key``)."""

    path: Path
    key: str
    identity: dict[str, Any]
    baseline: dict[str, Any] | None = None
    sensitivity: list[dict[str, Any]] | None = None
    results: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # candidate key -> result
    failed: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # key -> {"failed": reason, ...}
    spent_s: float = 0.0  # search time of earlier runs (the budget counts it)
    resumed: bool = False

    def save(self) -> None:
        write_json(self.path, {"format": FORMAT, "key": self.key, "identity": self.identity,
                               "baseline": self.baseline, "sensitivity": self.sensitivity,
                               "results": self.results, "failed": self.failed, "spent_s": self.spent_s})


def open_state(out: Path, key: str, identity: dict[str, Any], resume: bool | None) -> SearchState:
    """The state in ``out`` when it is this search's (``resume`` None: continue automatically; True:
    a state must exist), a fresh one when there is none; UsageError when ``out`` holds another search."""
    path = Path(out) / STATE_FILE
    if not path.exists():
        if resume:
            raise UsageError(f"--resume: {str(out)!r} holds no search to continue ({STATE_FILE} is missing). "
                             f"Run without --resume. Received: --out {out}.")
        return SearchState(path, key, identity)
    try:
        data = read_json(path)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError("not an optimize state")
    except (OSError, ValueError) as e:
        raise InputError(f"{path} is not a readable optimize state ({e}); use --force to start over.") from None
    if data.get("key") != key:
        old = data.get("identity") or {}
        diff = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
        raise StateMismatch(f"--out {str(out)!r} holds a search with other settings (changed: "
                            f"{', '.join(diff) or 'unknown'}): use --force to start over, or another --out. Received: the settings of this run.")
    return SearchState(path, key, identity, data.get("baseline"), data.get("sensitivity"),
                       dict(data.get("results") or {}), dict(data.get("failed") or {}),
                       float(data.get("spent_s") or 0.0), resumed=True)
