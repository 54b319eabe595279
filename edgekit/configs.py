"""What every frozen config dataclass shares: ``replace``, ``to_dict`` and a strict ``from_dict``."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, TypeVar

from edgekit.registry import reject_unknown_keys

C = TypeVar("C", bound="FrozenConfig")


class FrozenConfig:
    """Mix into a frozen dataclass; ``KIND`` names it in "Unknown KIND option" errors."""

    KIND = "config"

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], d: Mapping[str, Any]) -> C:
        reject_unknown_keys(cls.KIND, d, [f.name for f in dataclasses.fields(cls)])  # type: ignore[arg-type]
        return cls(**d)
