"""CLI command of the compress stage: ``edgekit compress MODEL ...``."""
from __future__ import annotations

import json
from pathlib import Path

import click

from edgekit.cli.common import (
    force_option, load_checked_dataset, load_model_from, model_dataset_options, progress_printer, quiet_option,
    resolve_dataset_options, signature_option, table, trust_option,
)
from edgekit.locking import locked_out


def _pairs(values: tuple[str, ...], option: str, kind: type, example: str) -> dict:
    """Parse repeated NAME=VALUE options."""
    from edgekit.errors import UsageError

    out = {}
    for v in values:
        name, sep, raw = v.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = kind(raw)
        except ValueError:
            raise UsageError(f"{option} expects NAME=VALUE such as {example}. Received: {v!r}.") from None
    return out


def _channels(value: str | None) -> float | dict | None:
    """--channels: one fraction, or NAME=RATIO pairs separated by commas."""
    from edgekit.errors import UsageError

    if value is None or "=" in value:
        return None if value is None else _pairs(tuple(v for v in value.split(",") if v.strip()), "--channels",
                                                  float, "conv2=0.5,conv3=0.25")
    try:
        return float(value)
    except ValueError:
        raise UsageError(f"--channels expects a fraction such as 0.5 or NAME=RATIO pairs such as "
                         f"conv2=0.5,conv3=0.25. Received: {value!r}.") from None


@click.command("compress")
@click.argument("model_path", metavar="MODEL", type=click.Path())
@model_dataset_options()
@click.option("--channels", default=None, metavar="RATIO|NAME=RATIO,...",
              help="Remove this fraction of the filters/units of every conv/dense layer but the classifier "
                   "(a smaller dense model), or per layer: conv2=0.5,conv3=0.25.")
@click.option("--channels-epochs", type=int, default=None,
              help="Override --epochs-per-stage for --channels and --downsample.")
@click.option("--downsample", type=click.IntRange(1, 2), default=1, show_default=True,
              help="2: the stem convolution strides twice as far, so every later layer computes on a quarter of "
                   "the positions (same input; models whose features end in global pooling).")
@click.option("--distill/--no-distill", default=None,
              help="Fine-tune every stage on the input model's outputs too (knowledge distillation), or none. "
                   "Default: the --channels fine-tune only.")
@click.option("--distill-alpha", type=float, default=0.5, show_default=True,
              help="Weight of the label loss; 1 - alpha weighs the teacher's (KL at --temperature).")
@click.option("--temperature", type=float, default=4.0, show_default=True, help="Distillation softmax temperature.")
@click.option("--prune", type=float, default=None,
              help="Target sparsity in [0, 1) of every prunable conv/dense kernel (minus --skip-layer).")
@click.option("--prune-schedule", type=click.Choice(["constant", "polynomial"]), default="constant",
              show_default=True, help="constant: target from the first step; polynomial: 0 -> target.")
@click.option("--prune-layer", multiple=True, metavar="NAME=SPARSITY",
              help="Per-layer target, e.g. dense1=0.9 (repeatable; overrides --prune and --skip-layer).")
@click.option("--skip-layer", multiple=True, metavar="NAME",
              help="Leave this layer out of --prune and --cluster (repeatable), e.g. conv1, output.")
@click.option("--prune-structure", default=None, metavar="M:N",
              help="Structured sparsity: M zeros in every N consecutive weights, e.g. 2:4.")
@click.option("--prune-begin-step", type=int, default=0, show_default=True)
@click.option("--prune-end-step", type=int, default=None, help="Step the target is reached (default: 70% of the fine-tune).")
@click.option("--prune-frequency", type=int, default=None, help="Steps between mask updates (default: ~20 updates).")
@click.option("--cluster", type=int, default=None, help="Shared values (clusters) per clusterable kernel (>= 2).")
@click.option("--cluster-init", type=click.Choice(["kmeans++", "linear", "density", "random"]), default="kmeans++",
              show_default=True, help="Centroid initialization.")
@click.option("--cluster-layer", multiple=True, metavar="NAME=CLUSTERS",
              help="Per-layer clusters, e.g. dense1=8 (repeatable).")
@click.option("--quantize", type=click.Choice(["none", "qat", "ptq"]), default="none", show_default=True,
              help="qat: quantization-aware training (PQAT/CQAT/PCQAT after prune/cluster); ptq: quantize at export.")
@click.option("--qat-calibrate/--no-qat-calibrate", default=True, show_default=True,
              help="Start QAT activation ranges at the float model's (representative images) instead of [-6, 6].")
@click.option("--bn-adapt/--no-bn-adapt", default=True, show_default=True,
              help="Re-estimate BatchNorm statistics on training images after every stage.")
@click.option("--max-drop", type=float, default=2.0, show_default=True, metavar="PT",
              help="Fail (exit 1) when the compressed model loses more validation accuracy than this, in points.")
@click.option("--epochs-per-stage", type=int, default=None,
              help="Fine-tune epochs of each stage (pruning: twice that unless --prune-epochs). Default: each "
                   "fine-tune but pruning's stops once validation loss has not improved for 2 epochs (at most 10, "
                   "best weights kept); pruning runs 4.")
@click.option("--prune-epochs", type=int, default=None, help="Pruning fine-tune epochs (default: 4, or 2 x --epochs-per-stage).")
@click.option("--cluster-epochs", type=int, default=None, help="Override --epochs-per-stage for clustering.")
@click.option("--qat-epochs", type=int, default=None, help="Override --epochs-per-stage for QAT.")
@click.option("--optimizer", default="adam", show_default=True,
              help="Fine-tune optimizer: gd, sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw.")
@click.option("--lr", type=float, default=None, help="Fine-tune learning rate (default: per optimizer).")
@click.option("--cluster-lr", type=float, default=None, help="Clustering rate (default: lr / 10).")
@click.option("--qat-lr", type=float, default=None, help="QAT rate (default: lr / 10).")
@click.option("--schedule", default="constant", show_default=True, help="constant, exponential, step, cosine.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--representative-samples", type=int, default=300, show_default=True,
              help="Training images that calibrate the int8 .tflite sizes in the report.")
@click.option("--representative-size", "representative_size", type=int, default=None, hidden=True,
              help="The old spelling of --representative-samples.")
@click.option("--out", required=True, type=click.Path(), help="Output folder for model.keras and the reports.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@force_option
@quiet_option
@signature_option
@trust_option
@locked_out("compress")
def compress_cmd(model_path: str, channels: str | None, prune_layer, skip_layer, cluster_layer, out: str,
                 force: bool, quiet: bool, as_json: bool, **kw) -> None:
    """Prune, cluster and/or quantization-aware-train MODEL; write model.keras, compression.json/.md.

    Stages run prune -> cluster -> quantize, each a short fine-tune on a copy (MODEL is
    never modified). Example:

    \b
      edgekit compress runs/cnn/model.keras --prune 0.8 --cluster 16 --quantize qat --out runs/cnn-pcqat
    """
    from edgekit.artifacts import prepare_out_dir
    from edgekit.compress import COMPRESS_FILES, CompressConfig, compress

    ds_kw = {k: kw.pop(k) for k in ("dataset", "seed", "test_split", "val_split", "limit", "preprocess",
                                    "signature", "dataset_mismatch_ok")}
    old_spelling = kw.pop("representative_size")
    if old_spelling is not None:
        kw["representative_samples"] = old_spelling
    config = CompressConfig(
        channels=_channels(channels),
        prune_layers=_pairs(prune_layer, "--prune-layer", float, "dense1=0.9"),
        cluster_layers=_pairs(cluster_layer, "--cluster-layer", int, "dense1=8"),
        skip_layers=tuple(skip_layer), seed=ds_kw["seed"] or 0, **kw,
    )  # options checked before anything is said or loaded
    rec = resolve_dataset_options(ds_kw, [model_path], progress_printer(quiet))
    config = config.replace(seed=ds_kw["seed"])  # the model's recorded seed without --seed
    if Path(out).exists():  # refuse early; a new folder is only created once the inputs are checked
        prepare_out_dir(out, force, expect=COMPRESS_FILES)
    dataset = load_checked_dataset(ds_kw, rec, calibrates=True)  # fine-tunes on it
    model = load_model_from(model_path, dataset, ds_kw)  # a Keras 3 translation is proven on the dataset's images
    from edgekit.errors import AccuracyLost

    try:
        res = compress(model, dataset, config, out=out, force=force, progress=progress_printer(quiet))
    except AccuracyLost as e:  # written, but not usable: the table first, then the one error line
        _print_result(e.result, out, quiet, as_json)  # type: ignore[attr-defined]
        raise
    _print_result(res, out, quiet, as_json)


def _print_result(res, out: str, quiet: bool, as_json: bool) -> None:
    """The stage table and the summary line (or the metrics as JSON)."""
    from edgekit.compress.report import ratios_line

    m = res.metrics
    if as_json:
        click.echo(json.dumps(m, indent=2))
        return
    rows = [{"stage": s["stage"], "accuracy": f"{s['accuracy']:.4f}", "drop_pt": f"{s['accuracy_drop_pt']:+.2f}",
             "params": f"{s.get('params', m['input']['params']):,}",
             "sparsity": f"{s['sparsity']:.3f}", "max_unique": s["max_unique_values"],
             "int8_tflite_B": f"{s['tflite_int8_bytes']:,}", "gzip_B": f"{s['tflite_int8_gzip_bytes']:,}",
             "seconds": f"{s['seconds']:.1f}"} for s in m["stages"]]
    if not quiet:
        click.echo(table(rows))
    f = m["final"]
    click.echo(
        f"{res.technique}: accuracy {f['accuracy']:.4f} ({-f['accuracy_drop_pt']:+.2f} pt), int8 .tflite "
        f"{f['tflite_int8_bytes']:,} B raw / {f['tflite_int8_gzip_bytes']:,} B gzip'd; {ratios_line(m['ratios'])} "
        f"-> {out}/model.keras"
    )


COMMANDS = [compress_cmd]
