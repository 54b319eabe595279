"""Typed errors. Library code raises these; the CLI maps them to one line and an exit code."""
from __future__ import annotations


class EdgekitError(Exception):
    """Base class of every error edgekit raises on purpose."""

    exit_code = 1


class UsageError(EdgekitError):
    """A wrong option, name or value given by the user (exit 2)."""

    exit_code = 2


class InputError(EdgekitError):
    """An input file or dataset that is missing, corrupt or does not fit (exit 2)."""

    exit_code = 2


class OutputExistsError(UsageError):
    """An output that exists and would be overwritten without ``force``."""


class ValidationError(EdgekitError):
    """An artifact that fails a validation tolerance."""

    def __init__(self, target: str, metric: str, value: float, limit: float, detail: str = ""):
        self.target, self.metric, self.value, self.limit = target, metric, value, limit
        msg = f"{target}: {metric} = {value:.6g} is outside the limit {limit:.6g}"
        super().__init__(msg + (f" ({detail})" if detail else ""))


class GateFailed(EdgekitError):
    """One or more CI gates failed (exit 1)."""

    exit_code = 1
