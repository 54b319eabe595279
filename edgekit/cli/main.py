"""The ``edgekit`` command: a thin layer over the Python API.

Command modules import only click at load time; TensorFlow is imported inside commands.
"""
from __future__ import annotations

import importlib

import click

import edgekit
from edgekit.cli import supervise
from edgekit.cli.common import EdgekitGroup
from edgekit.cli.progress import QUIET_KEY, VERBOSE_KEY

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


def _size_option(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """Check a --max-memory / --max-file-size value; the supervisor applied it before the command ran."""
    if value is None:
        return None
    try:
        return supervise.parse_size(value, supervise.SIZE_MINIMUM[f"--{param.name.replace('_', '-')}"])
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@click.group(cls=EdgekitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(edgekit.__version__, prog_name="edgekit")
@click.option("--quiet", "-q", is_flag=True, help="No progress output for any command (as each command's --quiet).")
@click.option("--verbose", is_flag=True,
              help="Also show what TensorFlow, its converters and other libraries log, and Python warnings "
                   "(hidden by default).")
@click.option("--max-memory", metavar="SIZE", envvar=supervise.MEMORY_ENV, callback=_size_option,
              help="Memory (address space) the command may use, e.g. 8G or 1500M; 0: no limit. Past it the "
                   "command stops with one line. Default: 80% of RAM, at least 8G (none with an NVIDIA GPU). "
                   f"Env: {supervise.MEMORY_ENV}.")
@click.option("--max-file-size", metavar="SIZE", envvar=supervise.FILE_SIZE_ENV, callback=_size_option,
              help=f"Largest file the command may write (default 8G; 0: no limit). Env: {supervise.FILE_SIZE_ENV}.")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: bool, max_memory: int | None, max_file_size: int | None) -> None:
    """edgekit: train, compress, export and validate small vision models for the edge.

    Each command runs in a child process under --max-memory and --max-file-size, so a crash
    in native code (TensorFlow, converters) or a memory bomb ends in one line, exit 2.
    """
    ctx.meta[QUIET_KEY] = quiet
    ctx.meta[VERBOSE_KEY] = verbose  # the supervisor routed the logs before the command ran


for _name in COMMAND_MODULES:
    for _cmd in importlib.import_module(_name).COMMANDS:
        cli.add_command(_cmd)


def main() -> None:
    """The ``edgekit`` console script: the command runs in a supervised child (see cli/supervise.py)."""
    supervise.supervise(lambda: cli(prog_name="edgekit"))


if __name__ == "__main__":
    main()
