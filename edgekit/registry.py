"""Registries resolved by name, with "did you mean" errors."""
from __future__ import annotations

import difflib
from typing import Any, Callable, Generic, Iterable, Iterator, Mapping, TypeVar

from edgekit.errors import UsageError

T = TypeVar("T")


def did_you_mean(name: str, choices: list[str]) -> str:
    """Return ' Did you mean "x"?' for the closest choice, or ''."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f' Did you mean "{close[0]}"?' if close else ""


def unknown_name(kind: str, name: str, choices: list[str]) -> UsageError:
    """The one-line error for a name that is not in ``choices``."""
    return UsageError(
        f"Unknown {kind} {name!r}. Expected one of: {', '.join(choices)}.{did_you_mean(name, choices)}"
    )


class Registry(Generic[T]):
    """A named collection of entries (models, optimizers, targets ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``name``."""

        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return deco

    def add(self, name: str, obj: T) -> T:
        return self.register(name)(obj)

    def get(self, name: str) -> T:
        """The entry called ``name``; a UsageError naming the valid ones otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            raise unknown_name(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        return list(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)


def reject_unknown_keys(kind: str, keys: Iterable[str], valid: Iterable[str]) -> None:
    """UsageError for the first key that is not a valid option of ``kind``, with a suggestion."""
    names = list(valid)
    for key in keys:
        if key not in names:
            raise UsageError(f"Unknown {kind} option {key!r}.{did_you_mean(str(key), names)} "
                             f"Valid options: {', '.join(names)}.")


def renamed_keys(kind: str, d: Mapping[str, Any], aliases: Mapping[str, str]) -> dict[str, Any]:
    """``d`` with old key spellings (``aliases``: old -> new) renamed; both spellings at once is an error."""
    out = dict(d)
    for old, new in aliases.items():
        if old in out:
            if new in out:
                raise UsageError(f"{kind}: {old!r} is the old spelling of {new!r}; give only one of them. "
                                 f"Received: both.")
            out[new] = out.pop(old)
    return out
