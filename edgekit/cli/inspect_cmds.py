"""CLI command ``edgekit inspect MODEL``: what a model is and what each target can do with it."""
from __future__ import annotations

import json

import click

from edgekit.cli.common import trust_option


@click.command("inspect")
@click.argument("model_path", metavar="MODEL", type=click.Path())
@click.option("--signature", default=None, metavar="NAME", help="SavedModel signature (default: serving_default).")
@click.option("--dataset", default=None, metavar="SPEC",
              help="Calibrate the int8 checks on this dataset (digits, mnist, idx:DIR ...) instead of random images.")
@click.option("--no-targets", is_flag=True, help="Only the model's facts: skip the conversions of the target checks.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@trust_option
def inspect_cmd(model_path: str, signature: str | None, dataset: str | None, no_targets: bool, as_json: bool) -> None:
    """Format, tensors, parameters, MACs and ops of MODEL (.keras/.h5, SavedModel folder, .onnx), and
    what each export target can do with it (int8 checks use random calibration images unless --dataset)."""
    from edgekit.models.inspect import describe, inspect_model

    data = None
    if dataset:
        from edgekit.data import load_dataset

        data = load_dataset(dataset)
    report = inspect_model(model_path, signature=signature, dataset=data, targets=not no_targets)
    click.echo(json.dumps(report, indent=2, default=str) if as_json else "\n".join(describe(report)))


COMMANDS = [inspect_cmd]
