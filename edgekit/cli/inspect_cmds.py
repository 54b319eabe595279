"""CLI command ``edgekit inspect PATH``: what a model is and what each target can do with it, or,
for an exported .tflite (and an .onnx with --ops), its per-op table."""
from __future__ import annotations

import json
from pathlib import Path

import click

from edgekit.cli.common import trust_option


@click.command("inspect")
@click.argument("model_path", metavar="PATH", type=click.Path())
@click.option("--signature", default=None, metavar="NAME", help="SavedModel signature (default: serving_default).")
@click.option("--dataset", default=None, metavar="SPEC",
              help="Calibrate the int8 checks on this dataset (digits, mnist, idx:DIR ...) instead of random images.")
@click.option("--no-targets", is_flag=True, help="Only the model's facts: skip the conversions of the target checks.")
@click.option("--ops", "per_op", is_flag=True,
              help="The per-op table of the file itself, parsed and never run (always for a .tflite; an .onnx "
                   "otherwise gets the model report).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@trust_option
def inspect_cmd(model_path: str, signature: str | None, dataset: str | None, no_targets: bool, per_op: bool,
                as_json: bool) -> None:
    """Format, tensors, parameters, MACs and ops of a model (.keras/.h5, SavedModel folder, .onnx), and
    what each export target can do with it (int8 checks use random calibration images unless --dataset).

    An exported .tflite (or an .onnx with --ops) gets its per-op table instead: shapes, dtypes,
    quantization, MACs, activation bytes and, for .tflite, the peak op and the Edge TPU mapping."""
    from edgekit.errors import UsageError
    from edgekit.models.inspect_artifact import is_tflite

    if per_op or is_tflite(Path(model_path)):
        from edgekit.models.inspect_artifact import describe_artifact, inspect_artifact

        if signature or dataset:
            raise UsageError(f"--signature and --dataset apply to models; the per-op table of {model_path!r} "
                             "reads the file alone. Drop them.")
        report = inspect_artifact(model_path)
        click.echo(json.dumps(report, indent=2, default=str) if as_json else "\n".join(describe_artifact(report)))
        return
    from edgekit.models.inspect import describe, inspect_model

    data = None
    if dataset:
        from edgekit.data import load_dataset

        data = load_dataset(dataset)
    report = inspect_model(model_path, signature=signature, dataset=data, targets=not no_targets)
    click.echo(json.dumps(report, indent=2, default=str) if as_json else "\n".join(describe(report)))


COMMANDS = [inspect_cmd]
