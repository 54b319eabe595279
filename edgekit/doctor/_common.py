"""What every doctor check shares: :class:`Finding`, running a check guarded, the probe model."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

STATUSES = ("ok", "warn", "fail")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One check's result: ``status`` is ``ok``, ``warn`` or ``fail``; ``fix`` says what to do."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def _guarded(out: list[Finding], name: str, fn: Callable[[], Any], fix: str) -> Any:
    """Run ``fn``; append its Finding(s) (or a fail naming the error) to ``out``; return its value."""
    try:
        r = fn()
    except Exception as e:  # noqa: BLE001 - a broken install is what doctor reports
        out.append(Finding(name, "fail", _error(e), fix or "reinstall edgekit's stack: pip install -e ."))
        return None
    if isinstance(r, Finding):
        out.append(r)
    elif isinstance(r, list) and all(isinstance(f, Finding) for f in r):
        out.extend(r)
    elif isinstance(r, tuple) and r and isinstance(r[0], Finding):
        out.append(r[0])
        return r[1]
    return r


def _error(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:240]}" if text else type(e).__name__


def _probe_model():
    """A fixed 4 -> 3 softmax Dense model (deterministic weights)."""
    from edgekit._lazy import keras

    k = keras()
    model = k.Sequential([k.Input((4,)), k.layers.Dense(3, activation="softmax")])
    model.set_weights([np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(4, 3),
                       np.array([0.1, 0.0, -0.1], np.float32)])
    return model
