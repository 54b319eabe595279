"""The export step of a pipeline: export to targets, then validate each artifact on its runtime.

:func:`edgekit.export.export` only writes artifacts; :func:`edgekit.validate.validate` only
checks them. This step wires the two (the CLI's ``export`` and ``benchmark``, and the
recipe's export stage), loading the model once for both.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from edgekit.data import Dataset
from edgekit.errors import EdgekitError, TargetsFailed
from edgekit.export.api import ExportResult, check_request, export
from edgekit.export.base import ExportConfig
from edgekit.manifest import drop_stage
from edgekit.validate.config import ValidateConfig
from edgekit.validate.validator import validate

# the step validates files its own converters just wrote: no child-process probe
STEP_VALIDATE = ValidateConfig(probe=False)
STAGE_VALIDATE = "validate"


def export_and_validate(
    model_or_path: Any,
    dataset: Dataset | None,
    targets: Sequence[str] | str,
    out: str | os.PathLike,
    *,
    force: bool = False,
    export_config: ExportConfig = ExportConfig(),
    validate_config: ValidateConfig = STEP_VALIDATE,
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """:func:`~edgekit.export.export`, then :func:`~edgekit.validate.validate` of every artifact
    (``result.validation``). Without a dataset nothing is validated.

    A float target that misses its tolerance raises that ValidationError after everything is
    written, with ``error.result`` set (the CLI prints the table first). Any other error of
    the validation half also carries ``error.result`` (the artifacts that were written). Targets
    that could not be built raise :class:`~edgekit.errors.TargetsFailed` after the others were
    written and validated.
    """
    from edgekit.models import load

    check_request(targets, out, force, dataset)  # cheap refusals come before loading the model
    handle = load(model_or_path)  # once, for export and for the reference outputs
    then = (STAGE_VALIDATE,) if dataset is not None else ()  # the folder is complete once both have written
    result = export(handle, dataset, targets, out, force=force, config=export_config, progress=progress, then=then)
    if dataset is None:
        return raise_failed(result)
    try:  # this step owns the folder: the validation of the files it just wrote replaces theirs
        result.validation = validate(
            {n: result.path(n) for n in result.outputs}, handle, dataset, result.out_dir,
            config=validate_config, progress=progress, check=False, force=True,
        )
    except EdgekitError as e:
        drop_stage(result.out_dir, STAGE_VALIDATE, finish=True)  # no validation of these files: none listed
        e.result = result  # type: ignore[attr-defined]
        raise
    result.failed.update(result.validation.errors)  # artifacts written but unable to run
    if result.validation.failures:
        err = result.validation.failures[0]
        err.result = result  # type: ignore[attr-defined]
        raise err
    return raise_failed(result)


def raise_failed(result: ExportResult) -> ExportResult:
    """``result``, or TargetsFailed (carrying it) when some targets could not be built."""
    if result.failed:
        err = TargetsFailed(result.failed, [n for n in result.outputs if n not in result.failed])
        err.result = result  # type: ignore[attr-defined]
        raise err
    return result


__all__ = ["export_and_validate", "raise_failed", "STEP_VALIDATE"]
