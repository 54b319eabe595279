"""The runner's reply header, checked field by field before the host believes any of it.

A device is not trusted: whatever answers on it may send NaN timings, a p50 of 0.001 us, a
CPU class it names itself, or a shape whose byte count overflows. :func:`check_header` turns
the decoded JSON header into an :class:`OkReply` or :class:`ErrorReply` whose every field has
its type and range, or raises :class:`ReplyError` naming the first field that does not.

Latency floor: a timed call is Python calling into a runtime's invoke. On the 2-core EPYC
build machine an empty Python call timed the runner's way takes 0.05 us and onnxruntime's
``run_with_iobinding`` of a one-node Identity model 1.9 us (min of 20,000); a p50 below
:data:`MIN_P50_US` (0.2 us, 4x an empty call, about 10x under the cheapest real invoke
measured) is not a model run. Every timing must also be finite, > 0, and no longer than the
run's timeout, which bounds their sum as well.
"""
from __future__ import annotations

import dataclasses
import math
import re
import statistics
from typing import Any, Mapping

from edgekit.devices.errortext import clean, shorten

MIN_P50_US = 0.2
MAX_RANK = 8
MAX_DIM = 1 << 31
TEXT_CHARS = 256
MACHINE = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # uname -m: x86_64, aarch64, armv7l, riscv64, AMD64
KIND = re.compile(r"[a-z][a-z0-9-]{0,31}")
CPUINFO_CHARS = 8192  # runner_script.CPUINFO_LIMIT

OK_FIELDS = ("status", "facts", "probe", "latencies_us", "outputs")
ERROR_FIELDS = ("status", "kind", "message")
TEXT_FACTS = ("system", "release", "platform", "processor", "python", "implementation", "executable", "numpy",
              "runtime", "runtime_version")
FACT_FIELDS = (*TEXT_FACTS, "cpu_count")
PROBE_FIELDS = ("machine", "cpuinfo")
OUTPUT_FIELDS = ("shape", "nbytes")


class _Missing:
    def __repr__(self) -> str:
        return "missing"


MISSING = _Missing()


class ReplyError(ValueError):
    """A reply field that is missing, mistyped or out of range: ``field``, the value seen, what was expected."""

    def __init__(self, field: str, value: Any, expected: str):
        self.field, self.value, self.expected = field, value, expected
        super().__init__(f"field {field} is {show(value)}; expected {expected}")


@dataclasses.dataclass(frozen=True)
class ErrorReply:
    """The runner could not run the model: ``kind`` (e.g. ``no-numpy``) and its ``message``."""

    kind: str
    message: str


@dataclasses.dataclass(frozen=True)
class OkReply:
    """A checked ok reply: descriptive ``facts``, the raw probe (``machine``, ``cpuinfo``),
    ``latencies_us`` (one per timed run) and the outputs' ``shape``/``nbytes``."""

    facts: dict[str, str | int | None]
    machine: str
    cpuinfo: str
    latencies_us: tuple[float, ...]
    shape: tuple[int, ...]
    nbytes: int


def show(value: Any) -> str:
    """A short, printable rendering of a reply value for an error message."""
    if isinstance(value, Mapping):
        return f"an object ({len(value)} fields)"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} items"
    return shorten(clean(repr(value)), 60)


def _fields(obj: Any, name: str, fields: tuple[str, ...]) -> Mapping[str, Any]:
    """``obj`` when it is an object with exactly ``fields``; ReplyError for the first missing or extra one."""
    if not isinstance(obj, Mapping):
        raise ReplyError(name, obj, "an object")
    prefix = f"{name}." if name else ""
    for key in fields:
        if key not in obj:
            raise ReplyError(f"{prefix}{key}", MISSING, f"one of the protocol's fields {', '.join(fields)}")
    for key in obj:
        if key not in fields:
            raise ReplyError(f"{prefix}{shorten(clean(str(key)), 40)}", obj[key],
                             f"no such field (the protocol has {', '.join(fields)})")
    return obj


def _text(value: Any, name: str, limit: int = TEXT_CHARS, multiline: bool = False) -> str:
    """A string of at most ``limit`` characters without control characters (newlines and tabs if ``multiline``)."""
    allowed = "\n\t" if multiline else ""
    if not isinstance(value, str) or len(value) > limit \
            or any(not c.isprintable() and c not in allowed for c in value):
        raise ReplyError(name, value, f"a string of at most {limit} printable characters")
    return value


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ReplyError(name, value, f"a whole number from {low} to {high}")
    return value


def _facts(obj: Any) -> dict[str, str | int | None]:
    facts = _fields(obj, "facts", FACT_FIELDS)
    out: dict[str, str | int | None] = {k: _text(facts[k], f"facts.{k}") for k in TEXT_FACTS}
    count = facts["cpu_count"]
    out["cpu_count"] = None if count is None else _int(count, "facts.cpu_count", 1, 1 << 16)
    return out


def _probe(obj: Any) -> tuple[str, str]:
    probe = _fields(obj, "probe", PROBE_FIELDS)
    machine = probe["machine"]
    if not isinstance(machine, str) or not MACHINE.fullmatch(machine):
        raise ReplyError("probe.machine", machine, "a machine name such as x86_64 or aarch64 (uname -m)")
    return machine, _text(probe["cpuinfo"], "probe.cpuinfo", CPUINFO_CHARS, multiline=True)


def _latencies(obj: Any, runs: int, timeout_s: float) -> tuple[float, ...]:
    """``runs`` timings, each finite, > 0 and within the timeout; their sum within it; p50 >= MIN_P50_US."""
    if not isinstance(obj, list) or len(obj) != runs:
        raise ReplyError("latencies_us", obj, f"a list of {runs} timings (one per run asked for)")
    limit = timeout_s * 1e6
    for i, t in enumerate(obj):
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or not 0 < t <= limit:
            raise ReplyError(f"latencies_us[{i}]", t, f"a finite number of microseconds > 0 and <= {limit:g} "
                             "(the run's timeout)")
    values = tuple(float(t) for t in obj)
    if sum(values) > limit:
        raise ReplyError("latencies_us", f"{sum(values):g} us in all", f"at most {limit:g} us (the run's timeout)")
    p50 = statistics.median(values)
    if p50 < MIN_P50_US:
        raise ReplyError("latencies_us (p50)", p50, f"at least {MIN_P50_US} us: no model runs faster than a "
                         "Python call into its runtime")
    return values


def _outputs(obj: Any, count: int) -> tuple[tuple[int, ...], int]:
    """The outputs' shape (rank 1..8, first dimension ``count``) and a byte count that matches it."""
    outputs = _fields(obj, "outputs", OUTPUT_FIELDS)
    shape = outputs["shape"]
    if not isinstance(shape, list) or not 1 <= len(shape) <= MAX_RANK:
        raise ReplyError("outputs.shape", shape, f"a list of 1 to {MAX_RANK} dimensions")
    dims = tuple(_int(d, f"outputs.shape[{i}]", 1, MAX_DIM) for i, d in enumerate(shape))
    if dims[0] != count:
        raise ReplyError("outputs.shape[0]", dims[0], f"{count} (one output per image sent)")
    nbytes = 4 * math.prod(dims)  # Python ints: no overflow
    if _int(outputs["nbytes"], "outputs.nbytes", 0, 1 << 62) != nbytes:
        raise ReplyError("outputs.nbytes", outputs["nbytes"], f"{nbytes} (float32 outputs of shape {list(dims)})")
    return dims, nbytes


def check_header(header: Any, count: int, runs: int, timeout_s: float) -> OkReply | ErrorReply:
    """The checked reply to a request of ``count`` images and ``runs`` timed runs within ``timeout_s``;
    ReplyError naming the first field that is missing, extra, mistyped or implausible."""
    if not isinstance(header, Mapping):
        raise ReplyError("(header)", header, "a JSON object")
    status = header.get("status")
    if status == "error":
        err = _fields(header, "", ERROR_FIELDS)
        kind = err["kind"] if isinstance(err["kind"], str) and KIND.fullmatch(err["kind"]) else None
        if kind is None:
            raise ReplyError("kind", err["kind"], "a short lower-case word such as no-numpy")
        if not isinstance(err["message"], str):
            raise ReplyError("message", err["message"], "a string")
        return ErrorReply(kind, err["message"])
    if status != "ok":
        raise ReplyError("status", status, '"ok" or "error"')
    ok = _fields(header, "", OK_FIELDS)
    machine, cpuinfo = _probe(ok["probe"])
    shape, nbytes = _outputs(ok["outputs"], count)
    return OkReply(_facts(ok["facts"]), machine, cpuinfo, _latencies(ok["latencies_us"], runs, timeout_s), shape,
                   nbytes)
