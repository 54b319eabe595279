"""CLI command ``edgekit optimize``: accuracy-constrained search for the smallest artifact."""
from __future__ import annotations

import click

from edgekit.cli.common import (
    force_option, load_checked_dataset, model_dataset_options, progress_printer, quiet_option, resolve_dataset_options,
    table, trust_option,
)
from edgekit.locking import locked_out


@click.command("optimize")
@click.argument("model_path", metavar="MODEL", type=click.Path())
@model_dataset_options()
@click.option("--target", default="tflite-int8", show_default=True, help="Export target searched for.")
@click.option("--max-accuracy-drop", type=float, default=0.5, show_default=True,
              help="Largest validation accuracy drop (points) against MODEL, measured on the artifact.")
@click.option("--max-size", default=None, metavar="SIZE", help="Largest raw artifact size, e.g. 12KB.")
@click.option("--max-latency-us", type=float, default=None, help="Largest LiteRT batch-1 1-thread median (us).")
@click.option("--accuracy-margin", default="auto", show_default=True, metavar="PT|auto",
              help="Points added to each candidate's validation drop; auto: its one-sided 95% bound "
                   "(1.645 standard errors).")
@click.option("--size-tolerance", type=float, default=0.05, show_default=True,
              help="Raw sizes within this fraction of the smallest count as equal; the smaller gzip'd file wins.")
@click.option("--budget-minutes", type=float, default=20.0, show_default=True, help="Time for the whole search.")
@click.option("--channels-epochs", type=int, default=8, show_default=True, help="Fine-tune epochs after channels.")
@click.option("--prune-epochs", type=int, default=4, show_default=True, help="Pruning fine-tune epochs.")
@click.option("--cluster-epochs", type=int, default=2, show_default=True, help="Clustering fine-tune epochs.")
@click.option("--qat-epochs", type=int, default=2, show_default=True, help="QAT fine-tune epochs.")
@click.option("--downsample/--keep-resolution", default=True, show_default=True,
              help="First try the stem at twice its stride (every later layer on a quarter of the positions, same "
                   "input), kept when it holds the limits; models whose features end in global pooling.")
@click.option("--max-tune", type=int, default=16, show_default=True,
              help="Leftover time re-runs near misses with fine-tunes up to this many times as long (1: never).")
@click.option("--out", required=True, type=click.Path(), help="Folder for the search state, candidates and reports.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Candidates measured at once, as Ray tasks (pip install 'edgekit[ray]'); 1: in this process.")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="Join this Ray cluster (default: $RAY_ADDRESS, else a local one when --workers > 1).")
@click.option("--worker-threads", type=click.IntRange(min=1), default=None,
              help="TensorFlow threads per candidate (default: the cores shared between the workers). Results "
                   "depend on it: keep it fixed to compare searches with different --workers.")
@click.option("--resume", is_flag=True,
              help="Continue the search in --out (also automatic when its settings match).")
@force_option
@quiet_option
@trust_option
@locked_out("optimize")
def optimize_cmd(model_path: str, target: str, max_accuracy_drop: float, max_size: str | None,
                 max_latency_us: float | None, accuracy_margin: str, size_tolerance: float, budget_minutes: float,
                 out: str, workers: int, ray_address: str | None, worker_threads: int | None, resume: bool,
                 force: bool, quiet: bool, **kw) -> None:
    """Search resolution, channels, sparsity, clusters and QAT/PTQ for the smallest artifact within the limits.

    Every candidate is exported and measured in its runtime on the validation split; the
    winner's holdout figure is reported. Writes optimize.json/.md/.png, recipe.yaml (re-run it
    with `edgekit run`) and the winning artifact. Exit 1 when no candidate meets the limits.

    \b
    Example:
      edgekit optimize runs/cnn/model.keras --dataset idx:data/mnist --max-accuracy-drop 0.5 --out runs/opt
    """
    from pathlib import Path

    from edgekit.errors import GateFailed, InputError, UsageError
    from edgekit.optimize import OptimizeConfig, optimize

    if force and resume:
        raise UsageError("--force starts the search over and --resume continues it: give one of them.")
    tuning = {k: kw.pop(k) for k in ("channels_epochs", "prune_epochs", "cluster_epochs", "qat_epochs", "max_tune",
                                     "downsample")}
    margin: float | str = accuracy_margin
    if accuracy_margin != "auto":
        try:
            margin = float(accuracy_margin)
        except ValueError:
            raise UsageError(f"--accuracy-margin must be a number of points or 'auto'. Received: {accuracy_margin!r}.") from None
    config = OptimizeConfig(target=target, max_accuracy_drop=max_accuracy_drop, max_size=max_size,
                            max_latency_us=max_latency_us, accuracy_margin=margin, size_tolerance=size_tolerance,
                            budget_minutes=budget_minutes, seed=kw["seed"], **tuning)
    if not Path(model_path).exists():
        raise InputError(f"Model {model_path!r} does not exist.")
    say = progress_printer(quiet)
    rec = resolve_dataset_options(kw, [model_path], say)
    config = config.replace(seed=kw["seed"])  # the model's recorded seed without --seed
    data = {k: kw[k] for k in ("seed", "test_split", "val_split", "limit", "preprocess")}
    data["spec"] = kw["dataset"]
    dataset = load_checked_dataset(kw, rec, calibrates=True)  # every candidate calibrates on it
    res = optimize(model_path, dataset, config, out, force=force, resume=True if resume else None, data=data,
                   progress=say, workers=workers, ray_address=ray_address, worker_threads=worker_threads)
    from edgekit.optimize.output import columns, rows

    if not quiet:
        click.echo(table(rows(res.report), columns(res.report)))
    click.echo(res.summary())
    click.echo(f"-> {out}/optimize.md, {out}/recipe.yaml (edgekit run {out}/recipe.yaml --out RUN)")
    if not res.met:
        raise GateFailed(f"no candidate meets the constraints; the nearest ({res.winner['key'] if res.winner else '-'}) "
                         f"misses: {'; '.join(res.missed)}.")


COMMANDS = [optimize_cmd]
