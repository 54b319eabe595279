"""CLI commands of recipes: ``edgekit run`` and ``edgekit recipe check|show``."""
from __future__ import annotations

import time

import click

from edgekit.cli.common import command_line, progress_printer, quiet_option, trust_option
from edgekit.locking import locked_out

set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a recipe value, e.g. --set train.epochs=1 (repeatable; VALUE is YAML).")


@click.command("run")
@click.argument("recipe_path", metavar="RECIPE", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Run folder (stages reuse what is unchanged).")
@click.option("--force", is_flag=True, help="Redo every stage, even when its inputs are unchanged.")
@set_option
@quiet_option
@trust_option
@locked_out("run")
def run_cmd(recipe_path: str, out: str, force: bool, overrides: tuple[str, ...], quiet: bool) -> None:
    """Run RECIPE: train -> compress -> export -> validate -> gates -> report."""
    from edgekit.recipe import load_recipe
    from edgekit.recipe.run import describe, run

    from edgekit.train.resume import TrainingInterrupted

    from edgekit.recipe.paths import check_inputs

    recipe = load_recipe(recipe_path, overrides)
    check_inputs(recipe, recipe_path)  # before any stage runs
    t0 = time.perf_counter()
    try:
        result = run(recipe, out, force=force, progress=progress_printer(quiet), raise_on_gate_failure=False)
    except TrainingInterrupted as e:
        raise TrainingInterrupted(f"{e} To continue, run: {command_line(drop=('--force',))}", e.signum) from None
    click.echo(describe(result))
    click.echo(f"total     {time.perf_counter() - t0:6.1f}s -> {out}/report.html")
    if result.gates is not None:
        click.echo(result.gates.to_markdown())
        result.gates.raise_if_failed()


@click.group("recipe")
def recipe_group() -> None:
    """Check or show a YAML recipe."""


@recipe_group.command("check")
@click.argument("files", metavar="FILE...", nargs=-1, required=True, type=click.Path())
@set_option
def check_cmd(files: tuple[str, ...], overrides: tuple[str, ...]) -> None:
    """Validate recipes: unknown keys, wrong types, impossible combinations, input paths that do not
    exist (relative paths in a recipe are taken from its folder)."""
    from edgekit.recipe import load_recipe
    from edgekit.recipe.paths import check_inputs

    for f in files:
        r = load_recipe(f, overrides)
        check_inputs(r, f)
        click.echo(f"{f}: OK ({r.name}, hash {r.hash()})")


@recipe_group.command("show")
@click.argument("file", type=click.Path())
@set_option
def show_cmd(file: str, overrides: tuple[str, ...]) -> None:
    """Print the fully resolved recipe (every default spelled out) as YAML."""
    from edgekit.recipe import load_recipe

    click.echo(load_recipe(file, overrides).to_yaml(), nl=False)


COMMANDS = [run_cmd, recipe_group]
