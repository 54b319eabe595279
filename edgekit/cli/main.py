"""The ``edgekit`` command: a thin layer over the Python API.

Command modules import only click at load time; TensorFlow is imported inside commands.
"""
from __future__ import annotations

import importlib

import click

import edgekit
from edgekit.cli.common import EdgekitGroup
from edgekit.cli.progress import QUIET_KEY

# each module exposes COMMANDS: list[click.Command]
COMMAND_MODULES = (
    "edgekit.cli.train_cmds",
    "edgekit.cli.accel_cmds",
    "edgekit.cli.compress_cmds",
    "edgekit.cli.export_cmds",
    "edgekit.cli.inspect_cmds",
    "edgekit.cli.gate_cmds",
    "edgekit.cli.recipe_cmds",
    "edgekit.cli.doctor_cmds",
    "edgekit.cli.diagnose_cmds",
    "edgekit.cli.optimize_cmds",
)


@click.group(cls=EdgekitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(edgekit.__version__, prog_name="edgekit")
@click.option("--quiet", "-q", is_flag=True, help="No progress output for any command (as each command's --quiet).")
@click.pass_context
def cli(ctx: click.Context, quiet: bool) -> None:
    """edgekit: train, compress, export and validate small vision models for the edge."""
    ctx.meta[QUIET_KEY] = quiet


for _name in COMMAND_MODULES:
    for _cmd in importlib.import_module(_name).COMMANDS:
        cli.add_command(_cmd)


def main() -> None:
    cli(prog_name="edgekit")


if __name__ == "__main__":
    main()
