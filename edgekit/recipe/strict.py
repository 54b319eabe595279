"""Strict parsing of mappings into frozen dataclasses: unknown keys (with the closest valid
key), wrong types and out-of-range values are errors that name the key path."""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, Mapping, Union

from edgekit.errors import UsageError
from edgekit.registry import did_you_mean, renamed_keys


def shown(value: Any, limit: int = 120, quote: bool = True) -> str:
    """``repr(value)`` (or ``str`` when not ``quote``) cut to ``limit`` characters, so an error
    line stays readable whatever a file holds."""
    text = repr(value) if quote else str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def clip_quoted(message: str, limit: int = 100) -> str:
    """Cut quoted values longer than ``limit`` inside an error message (e.g. an unknown name
    echoed back by a registry), keeping the rest of the line."""
    return re.sub(r"'([^'\n]{%d})[^'\n]{20,}'" % limit, r"'\1...'", message)


def check_keys(data: Any, allowed: list[str], path: str) -> dict[str, Any]:
    """``data`` as a dict whose keys are all in ``allowed``."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise UsageError(f"{path} must be a mapping of keys to values. Received: {type(data).__name__} {shown(data)}.")
    for key in data:
        if key not in allowed:
            raise UsageError(
                f"Unknown key {path}.{shown(key, 60, quote=False)}.{did_you_mean(str(key), allowed)} Valid keys of {path}: {', '.join(allowed)}."
            )
    return dict(data)


def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if tp is type(None):
        return "null"
    if origin in (tuple, list) or origin is typing.get_origin(typing.Sequence[int]):
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if origin in (dict,) or origin is typing.get_origin(Mapping[str, int]):
        return f"a mapping of {_type_name(args[0])} to {_type_name(args[1])}" if args else "a mapping"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(tp, getattr(tp, "__name__", str(tp)))


def matches(value: Any, tp: Any) -> bool:
    """Whether a YAML value fits the type annotation ``tp`` (unknown types pass)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (tuple, list) or origin is typing.get_origin(typing.Sequence[int]):
        if not isinstance(value, (list, tuple)):
            return False
        item = args[0] if args else Any
        return all(matches(v, item) for v in value)
    if origin is dict or origin is typing.get_origin(Mapping[str, int]):
        if not isinstance(value, Mapping):
            return False
        kt, vt = args if args else (Any, Any)
        return all(matches(k, kt) and matches(v, vt) for k, v in value.items())
    return True


def parse_dataclass(cls: type, data: Any, path: str, exclude: tuple[str, ...] = ()) -> Any:
    """Build ``cls`` from ``data``: keys checked, values type-checked, the class's own
    validation errors prefixed with ``path``."""
    fields = [f.name for f in dataclasses.fields(cls) if f.name not in exclude]
    if isinstance(data, Mapping):  # old spellings of keys are still accepted
        data = renamed_keys(path, data, getattr(cls, "KEY_ALIASES", {}))
    d = check_keys(data, fields, path)
    hints = typing.get_type_hints(cls)
    for key, value in d.items():
        if not matches(value, hints[key]):
            raise UsageError(f"{path}.{key} must be {_type_name(hints[key])}. Received: {shown(value)}.")
        if isinstance(value, list):
            d[key] = tuple(value)
    try:
        return cls.from_dict(d) if hasattr(cls, "from_dict") else cls(**d)
    except UsageError as e:
        raise UsageError(f"{path}: {clip_quoted(str(e))}") from None
    except TypeError as e:  # a required field missing
        raise UsageError(f"{path}: {clip_quoted(str(e))}") from None
