"""Shared CLI pieces: error handling, dataset options, output of tables."""
from __future__ import annotations

import functools
import sys
from typing import Any, Callable

import click

from edgekit.errors import EdgekitError


class EdgekitGroup(click.Group):
    """A click group that turns EdgekitErrors into one line and the error's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        from edgekit.interrupt import checkpoint, pending, raising_signals

        try:
            with raising_signals():
                result = super().invoke(ctx)
                checkpoint()  # a stop that came after the last safe point still ends with its code
                return result
        except EdgekitError as e:
            click.echo(f"Error: {e}", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            import signal

            sig = pending() or signal.SIGINT
            click.echo(f"Error: Stopped by {signal.Signals(sig).name}; finished outputs are kept, "
                       "unfinished ones were not written. Run the command again to redo them.", err=True)
            ctx.exit(128 + sig)
        except Exception as e:  # disk full, permission denied, read-only file system ...
            from edgekit.errors import as_os_error, describe_os_error

            os_error = as_os_error(e)
            if os_error is None:
                raise
            msg, code = describe_os_error(os_error)
            click.echo(f"Error: {msg}", err=True)
            ctx.exit(code)


def dataset_options(f: Callable) -> Callable:
    """--dataset, --seed, --test-split, --val-split, --limit, --preprocess."""
    opts = [
        click.option("--dataset", "dataset", default="digits", show_default=True,
                     help="Dataset spec: digits, idx:DIR, npz:FILE, images:DIR[,size=HxW][,channels=1|3], mnist, "
                          "fashion_mnist."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed for splits, init and shuffling."),
        click.option("--test-split", type=float, default=0.2, show_default=True,
                     help="Holdout fraction when the source has a single split."),
        click.option("--val-split", type=float, default=0.1, show_default=True,
                     help="Validation fraction of the training split (0: validate on the holdout)."),
        click.option("--limit", type=int, default=None, help="Use a stratified subset of this many images."),
        click.option("--preprocess", default="unit", show_default=True, metavar="SPEC",
                     help="Pixels the model expects: unit (0..1), symmetric (-1..1), raw255 (0..255), imagenet "
                          "(RGB mean/std) or mean=M,std=S (0..255 units, a/b/c per channel)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def load_dataset_from(kw: dict[str, Any]):
    """Pop the dataset options from ``kw`` and load the dataset."""
    from edgekit.data import load_dataset

    dataset = load_dataset(
        kw.pop("dataset"), seed=kw.pop("seed"), test_split=kw.pop("test_split"),
        val_split=kw.pop("val_split"), limit=kw.pop("limit"), preprocess=kw.pop("preprocess", None),
    )
    for note in dataset.info.notes:
        click.echo(f"note: {note}", err=True)
    return dataset


def force_option(f: Callable) -> Callable:
    return click.option("--force", is_flag=True, help="Overwrite an existing output folder.")(f)


def trust_option(f: Callable) -> Callable:
    """--trust-model: load model files that carry Python code (Lambda layers) for this command."""
    @functools.wraps(f)
    def wrapper(*args: Any, trust_model: bool = False, **kw: Any) -> Any:
        from edgekit.models.io import trust_models

        with trust_models(trust_model):
            return f(*args, **kw)

    return click.option(
        "--trust-model", is_flag=True,
        help="Load model files even when they hold Python code (Lambda layers), which runs on load. "
             "Only for files from a source you trust.")(wrapper)


def signature_option(f: Callable) -> Callable:
    """--signature: which signature of a SavedModel to use (default: serving_default)."""
    return click.option("--signature", default=None, metavar="NAME",
                        help="SavedModel only: the signature to use (default: serving_default).")(f)


def load_model_from(path: str, dataset: Any, kw: dict[str, Any]) -> Any:
    """Pop --signature from ``kw`` and load MODEL's handle for ``dataset`` (any format)."""
    from edgekit.models.loading import load_for

    return load_for(path, dataset, signature=kw.pop("signature", None))


def quiet_option(f: Callable) -> Callable:
    return click.option("--quiet", "-q", is_flag=True, help="Print only the final result.")(f)


def progress_printer(quiet: bool) -> Callable[[str], None]:
    """The command's progress callback (:class:`edgekit.cli.progress.Progress`): a rich bar on a
    terminal, plain lines on stderr otherwise, nothing with --quiet (the command's or edgekit's)."""
    from edgekit.cli.progress import Progress

    return Progress(quiet)


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A plain aligned text table."""
    if not rows:
        return "(empty)"
    cols = columns or list(rows[0])
    cells = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()
    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def command_line(drop: tuple[str, ...] = (), add: tuple[str, ...] = ()) -> str:
    """This process's command line, shell-quoted, without the flags ``drop`` and with ``add``."""
    import os
    import shlex

    args = [a for a in sys.argv[1:] if a not in drop and a not in add]
    prog = "edgekit" if os.path.basename(sys.argv[0]) == "edgekit" else sys.argv[0]
    return shlex.join([prog, *args, *add])


def is_tty() -> bool:
    return sys.stderr.isatty()
