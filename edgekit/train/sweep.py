"""Compare optimizer x schedule x model choices with the same data, seed and epochs."""
from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path
from typing import Any, Callable, Sequence

from edgekit.artifacts import prepare_out_dir, write_text
from edgekit.data import Dataset
from edgekit.progress import counted
from edgekit.train.config import TrainConfig
from edgekit.train.trainer import train

COLUMNS = ["run", "model", "optimizer", "schedule", "lr", "final_val_accuracy", "best_val_accuracy",
           "test_accuracy", "epochs_to_target", "seconds_to_target", "images_per_second", "train_seconds"]


def sweep(
    base: TrainConfig,
    dataset: Dataset,
    *,
    models: Sequence[str] = ("cnn",),
    optimizers: Sequence[str] = ("sgd", "adam"),
    schedules: Sequence[str] = ("constant",),
    target_accuracy: float = 0.95,
    out: str | Path | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    workers: int = 1,
    ray_address: str | None = None,
    worker_threads: int | None = None,
) -> list[dict[str, Any]]:
    """Train every combination; returns one row each (see COLUMNS) and, with ``out``,
    writes ``sweep.md``, ``sweep.csv``, ``val_curves.png`` and one run folder per combination.
    ``workers`` > 1 or ``ray_address``: the runs train at once as Ray tasks of ``worker_threads``
    TensorFlow threads each (rows and folders as in one process; with the same threads, the same
    weights)."""
    from edgekit.parallel import make_executor

    out_dir = prepare_out_dir(out, force) if out else None
    say = progress or (lambda _m: None)
    combos = [(base.replace(model=m, optimizer=o, schedule=s), f"{m}-{o}-{s}")
              for m, o, s in itertools.product(models, optimizers, schedules)]
    pool = make_executor(workers, ray_address, worker_threads, say)
    try:
        rows, curves = _run_all(combos, dataset, pool, out_dir, force, target_accuracy, say)
    finally:
        pool.close()
    if out_dir:
        from edgekit.train.plots import plot_val_curves

        write_text(out_dir / "sweep.md", to_markdown(rows, target_accuracy))
        write_text(out_dir / "sweep.csv", to_csv(rows))
        plot_val_curves(curves, out_dir / "val_curves.png", title=f"{dataset.info.spec}: validation accuracy")
    return rows


def _run_all(combos: list[tuple[TrainConfig, str]], dataset: Dataset, pool: Any, out_dir: Path | None, force: bool,
             target: float, say: Callable[[str], None]) -> tuple[list[dict[str, Any]], dict[str, list]]:
    """Every run, in order: in this process one after another, or all submitted to the pool at once."""
    from edgekit.parallel.folders import unpack
    from edgekit.train.remote import run_config

    rows, curves = [], {}
    shared = pool.share(dataset) if pool.remote else None
    jobs = [pool.submit(run_config, shared, cfg.to_dict(), out_dir is not None) for cfg, _ in combos] \
        if pool.remote else []
    for i, (cfg, name) in enumerate(combos):
        say(counted("sweep", i + 1, len(combos), f"[{i + 1}/{len(combos)}] {name}"))  # a bar on a terminal
        if pool.remote:
            job, node = pool.wait(jobs[i])
            if out_dir is not None:
                unpack(job["tar"], out_dir / name)
            history, metrics = job["history"], job["metrics"]
            say(f"  {name}: trained on {node}")
        else:
            res = train(cfg, dataset, out=out_dir / name if out_dir else None, force=force)
            history, metrics = res.history, res.metrics
        rows.append(_row(name, cfg, history, metrics, target))
        curves[name] = history
    return rows, curves


def _row(name: str, cfg: TrainConfig, history: list[dict], metrics: dict, target: float) -> dict[str, Any]:
    reached = next((r for r in history if r.get("val_accuracy", 0) >= target), None)
    secs = None
    if reached:
        secs = sum(r["seconds"] for r in history if r["epoch"] <= reached["epoch"])
    return {
        "run": name, "model": cfg.model, "optimizer": cfg.optimizer, "schedule": cfg.schedule,
        "lr": cfg.learning_rate,
        "final_val_accuracy": history[-1].get("val_accuracy"),
        "best_val_accuracy": max(r.get("val_accuracy", 0) for r in history),
        "test_accuracy": metrics["test_accuracy"],
        "epochs_to_target": reached["epoch"] if reached else None,
        "seconds_to_target": secs,
        "images_per_second": metrics["images_per_second"],
        "train_seconds": metrics["train_seconds"],
    }


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def to_markdown(rows: list[dict[str, Any]], target: float) -> str:
    head = f"Target validation accuracy: {target:.2%}\n\n| " + " | ".join(COLUMNS) + " |\n"
    head += "|" + "---|" * len(COLUMNS) + "\n"
    return head + "".join("| " + " | ".join(_cell(r[c]) for c in COLUMNS) + " |\n" for r in rows)


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS)
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()
