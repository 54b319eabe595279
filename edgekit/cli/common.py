"""Shared CLI pieces: error handling, dataset options, output of tables."""
from __future__ import annotations

import functools
import sys
from typing import Any, Callable, Iterable

import click

from edgekit.cli.progress import close_all
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
            error_line(f"Error: {e}")
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            import signal

            sig = pending() or signal.SIGINT
            error_line(f"Error: Stopped by {signal.Signals(sig).name}; finished outputs are kept, "
                       "unfinished ones were not written. Run the command again to redo them.")
            ctx.exit(128 + sig)
        except Exception as e:  # disk full, permission denied, read-only file system ...
            from edgekit.data.decode import as_input_error
            from edgekit.errors import as_os_error, describe_os_error

            bad_image = as_input_error(e)  # an image that stopped decoding after the dataset was loaded
            if bad_image is not None:
                error_line(f"Error: {bad_image}")
                ctx.exit(bad_image.exit_code)
            os_error = as_os_error(e)
            if os_error is None:
                close_all()
                raise
            msg, code = describe_os_error(os_error)
            error_line(f"Error: {msg}")
            ctx.exit(code)


_SPEC_HELP = ("digits, idx:DIR, npz:FILE, images:DIR[,size=HxW][,channels=1|3][,cache=auto|memory|disk|none]"
              "[,bad_images=refuse|skip], tfrecord:GLOB[,size=HxW][,channels=1|3][,cache=...], mnist, fashion_mnist")


def _dataset_option_list(spec_default: str | None, spec_help: str) -> list[Callable]:
    return [
        click.option("--dataset", "dataset", default=spec_default, show_default=spec_default is not None,
                     help=spec_help),
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


def _apply(f: Callable, opts: list[Callable]) -> Callable:
    for opt in reversed(opts):
        f = opt(f)
    return f


def dataset_options(f: Callable) -> Callable:
    """--dataset, --seed, --test-split, --val-split, --limit, --preprocess."""
    return _apply(f, _dataset_option_list("digits", f"Dataset spec: {_SPEC_HELP}."))


def model_dataset_options(mismatch_flag: bool = True) -> Callable[[Callable], Callable]:
    """The dataset options of a command that takes a trained model: ``--dataset`` and the split
    options default to what the model's manifest records (:func:`resolve_dataset_options`);
    ``mismatch_flag`` adds --dataset-mismatch-ok (commands that calibrate on the data)."""
    opts = _dataset_option_list(None, f"Dataset spec: {_SPEC_HELP} (default: the dataset the model's manifest "
                                      "records, with its seed, splits and pixels; digits without one).")
    if mismatch_flag:
        opts.append(click.option(
            "--dataset-mismatch-ok", is_flag=True,
            help="Calibrate on a dataset that differs from the one the model was trained on (input shape, "
                 "classes or contents); refused otherwise."))
    return lambda f: _apply(f, opts)


def load_dataset_from(kw: dict[str, Any]):
    """Pop the dataset options from ``kw`` and load the dataset."""
    from edgekit.data import load_dataset

    dataset = load_dataset(
        kw.pop("dataset") or "digits", seed=kw.pop("seed"), test_split=kw.pop("test_split"),
        val_split=kw.pop("val_split"), limit=kw.pop("limit"), preprocess=kw.pop("preprocess", None),
    )
    for note in dataset.info.notes:
        click.echo(f"note: {note}", err=True)
    return dataset


def resolve_dataset_options(kw: dict[str, Any], models: Iterable[Any], say: Callable[[str], None]) -> Any:
    """Fill ``kw``'s dataset options from the manifest beside the first of ``models`` that has one
    (:func:`edgekit.data.provenance.recorded_dataset`) and say where the dataset comes from in one
    line; returns that record (None without one). Without --dataset the recorded spec is used;
    seed, splits and limit follow it unless given (or when --dataset names other data); the pixel
    convention (--preprocess) is the model's own, so it follows the record unless given."""
    from edgekit.data.provenance import check_recorded_path, recorded_dataset
    from edgekit.data.sources import absolute_spec

    models = [m for m in models if m is not None]
    rec = recorded_dataset(models)
    given = kw.get("dataset")
    if rec is None:
        if given is None:
            kw["dataset"] = "digits"
            name = str(models[0]) if models else "the model"
            say(f"dataset: digits (the default: no manifest beside {name} records the data it was trained on; "
                "give --dataset to choose)")
        return None
    same = given is None or absolute_spec(given) == absolute_spec(rec.spec)
    for k, v in rec.options().items():
        if (same or k == "preprocess") and not _explicit(k):
            kw[k] = v
    if given is None:
        check_recorded_path(rec)
        kw["dataset"] = rec.spec
        say(f"dataset: {rec.spec} (from the model's manifest {rec.manifest})")
    return rec


def load_checked_dataset(kw: dict[str, Any], rec: Any, *, calibrates: bool) -> Any:
    """:func:`load_dataset_from`, then compare it with the model's recorded dataset ``rec``: a
    difference is one warning line; other data (shape, classes, pixels, contents) is a UsageError
    (exit 2) where the command calibrates on it (int8 targets, diagnose, optimize) unless
    --dataset-mismatch-ok."""
    from edgekit.data.provenance import mismatch
    from edgekit.errors import UsageError

    ok = kw.pop("dataset_mismatch_ok", False)
    dataset = load_dataset_from(kw)
    found = mismatch(rec, dataset.info)
    if found is None:
        return dataset
    line, other_data = found
    if not other_data:  # the same source split another way: calibration is sound, the holdout may not be
        click.echo(f"Warning: the {line}.", err=True)
        return dataset
    if calibrates and not ok:
        raise UsageError(f"The {line}. Calibrating on other data gives a wrong int8 model: give --dataset "
                         f"{rec.spec} (or leave --dataset out), or add --dataset-mismatch-ok to go on.")
    tail = "going on (--dataset-mismatch-ok)" if calibrates else "accuracy measured on it is not the model's"
    click.echo(f"Warning: the {line}; {tail}.", err=True)
    return dataset


def _explicit(name: str) -> bool:
    """Whether the option ``name`` was given (not its default); True outside a click command."""
    from click.core import ParameterSource

    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return True
    return ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)


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
    """The command's progress callback (:class:`edgekit.cli.progress.Display`): rich bars for
    :class:`edgekit.progress.Progress` events on a terminal, plain lines on stderr otherwise,
    nothing with --quiet (the command's or edgekit's)."""
    from edgekit.cli.progress import Display

    return Display(quiet)


def error_line(message: str) -> None:
    """Print a final ``Error: ...`` line on stderr after stopping any progress display."""
    close_all()
    click.echo(message, err=True)


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """An aligned table of ``rows``: a rich table fitted to the terminal's width when stdout is a
    terminal, plain text (no escape sequences) otherwise. Stops any progress display first, so
    the table printed next is never erased by it."""
    close_all()
    if not rows:
        return "(empty)"
    cols = columns or list(rows[0])
    cells = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    if _stdout_is_terminal():
        return _rich_table(cols, cells)
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()
    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _stdout_is_terminal() -> bool:
    return bool(getattr(sys.stdout, "isatty", lambda: False)())


_CELL_STYLES = {"PASS": "green", "FAIL": "bold red", "SKIP": "yellow", "ok": "green", "fail": "bold red"}


def _rich_table(cols: list[str], cells: list[list[str]]) -> str:
    """``cells`` as a rich table (ANSI text), as wide as the terminal at most; long cells wrap."""
    import io
    import shutil

    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    width = shutil.get_terminal_size(fallback=(100, 24)).columns
    console = Console(file=io.StringIO(), width=max(width, 20), force_terminal=True, highlight=False)
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for c in cols:
        t.add_column(c, overflow="fold")
    for row in cells:
        t.add_row(*(Text(v, style=_CELL_STYLES.get(v, "")) for v in row))
    with console.capture() as cap:
        console.print(t)
    return "\n".join(ln.rstrip() for ln in cap.get().rstrip("\n").splitlines())


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
