"""CLI commands of the export stage: export, validate, benchmark."""
from __future__ import annotations

import click

from edgekit.cli.common import (
    force_option, load_checked_dataset, load_model_from, model_dataset_options, progress_printer, quiet_option,
    resolve_dataset_options, signature_option, table, trust_option,
)
from edgekit.locking import locked_out, out_lock

VALIDATION_COLUMNS = ["target", "runtime", "accuracy", "drop (pt)", "agreement", "max |diff|", "p50 (us)",
                      "threads", "size", "gzip", "status"]


VALIDATION_HELP = {
    "max_diff": "Float targets: largest allowed |output_artifact - output_reference| on any holdout sample, "
                "relative to the outputs' largest magnitude when that is above 1 (logits).",
    "threads": "Inference threads for LiteRT and onnxruntime (default: 1, measured fastest at batch 1 here).",
    "runs": "Timed batch-1 runs per target.",
    "min_agreement": "Reduced-precision targets: lowest top-1 agreement with the source model, in percent "
                     "(default per target: 98 fp16, 97 dynamic, 90 int8/edgetpu/micro/onnx-int8, 85 int4; "
                     "0 turns it off).",
}


def _field_option(cls: type, name: str, help: str):
    """A click option ``--name`` whose type and default come from the dataclass field ``cls.name``."""
    import dataclasses
    import typing

    field = {f.name: f for f in dataclasses.fields(cls)}[name]
    kind = typing.get_type_hints(cls)[name]
    kind = next((a for a in typing.get_args(kind) if a is not type(None)), kind)  # int | None -> int
    return click.option(f"--{name.replace('_', '-')}", type=kind, default=field.default,
                        show_default=field.default is not None, help=help)


def _validation_options(f):
    """--max-diff, --threads, --runs, --min-agreement: the fields of ValidateConfig, with its defaults."""
    from edgekit.validate.config import ValidateConfig

    for name in reversed(VALIDATION_HELP):
        f = _field_option(ValidateConfig, name, VALIDATION_HELP[name])(f)
    return f


def _representative_option(f):
    from edgekit.export.base import ExportConfig

    return _field_option(ExportConfig, "representative_samples", "Training images used to calibrate int8 targets.")(f)


def _validate_config(max_diff: float, threads: int | None, runs: int, **kw):
    """The ValidateConfig of the command line (the step validates the files it just wrote: no probe)."""
    from edgekit.validate.config import ValidateConfig

    ctx = click.get_current_context(silent=True)  # --min-agreement, where the command has it
    kw.setdefault("min_agreement", ctx.params.get("min_agreement") if ctx is not None else None)
    return ValidateConfig(max_diff=max_diff, threads=threads, runs=runs, **kw)


def split_names(values: tuple[str, ...]) -> tuple[str, ...]:
    """``("a,b", "c")`` -> ``("a", "b", "c")``: repeatable, comma-separated layer names."""
    return tuple(n.strip() for v in values for n in v.split(",") if n.strip())


def _check_model_path(path: str) -> None:
    from pathlib import Path

    from edgekit.errors import InputError

    if not Path(path).exists():
        raise InputError(f"Model file {path!r} does not exist.")


@click.command("export")
@click.argument("model_path", metavar="MODEL", required=False, type=click.Path())
@click.option("--target", "targets", multiple=True, metavar="NAME",
              help="Target to build (repeat for several); see --list-targets.")
@click.option("--list-targets", is_flag=True, help="List the targets with what each needs, and exit.")
@model_dataset_options()
@click.option("--out", type=click.Path(), help="Output folder for the artifacts, validation and manifest.")
@_representative_option
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset (9-18).")
@click.option("--calibration", default="minmax", show_default=True,
              help="onnx-int8 calibration: minmax, entropy or percentile.")
@click.option("--require-full-mapping", is_flag=True, help="edgetpu: fail when any op would run on the CPU.")
@click.option("--arena-size", type=int, default=None,
              help="micro: the tensor arena your device has (bytes); fails when the model does not fit.")
@click.option("--keep-float", "keep_float", multiple=True, metavar="LAYER[,LAYER]",
              help="tflite-int8: Keras layers whose ops stay float32 (see edgekit diagnose).")
@click.option("--int16", "int16", multiple=True, metavar="LAYER[,LAYER]",
              help="tflite-int8: Keras layers with 16-bit activations and 8-bit weights (needs "
                   "pip install 'edgekit[quantizer]').")
@click.option("--no-validate", is_flag=True, help="Skip running the artifacts on their runtimes.")
@_validation_options
@force_option
@quiet_option
@signature_option
@trust_option
@locked_out("export")
def export_cmd(model_path, targets, list_targets, out, representative_samples, opset, calibration,
               require_full_mapping, arena_size, keep_float, int16, no_validate, max_diff, threads, runs, force, quiet,
               **kw) -> None:
    """Export MODEL (.keras/.h5 from tf_keras or Keras 3, a SavedModel folder, .onnx) to edge targets and validate each one on its runtime.

    \b
    Example:
      edgekit export run/model.keras --target tflite-int8 --target onnx --dataset digits --out run/export
    """
    from edgekit.errors import UsageError

    if list_targets:
        from edgekit.export import list_targets as lt

        click.echo(table(lt(), ["target", "runtime", "needs", "description"]))
        return
    if not model_path:
        raise UsageError("Missing argument MODEL: the .keras model to export (or use --list-targets).")
    if not targets:
        from edgekit.export import load_targets

        raise UsageError(f"Give at least one --target. Expected one of: {', '.join(load_targets().names())}.")
    if not out:
        raise UsageError("Missing option --out: the folder to write the artifacts into.")
    from pathlib import Path

    from edgekit.artifacts import prepare_out_dir
    from edgekit.export import ExportConfig, export, load_targets, resolve_targets
    from edgekit.export.api import check_int16
    from edgekit.validate.step import export_and_validate, raise_failed

    names = resolve_targets(targets)
    config = ExportConfig(representative_samples=representative_samples, opset=opset, calibration=calibration,
                          require_full_mapping=require_full_mapping, arena_size=arena_size,
                          keep_float=split_names(keep_float), int16=split_names(int16), seed=kw["seed"])
    check_int16(config, names)  # before the dataset and model load
    vconfig = _validate_config(max_diff, threads, runs, probe=False)
    registry = load_targets()
    _check_model_path(model_path)
    rec = resolve_dataset_options(kw, [model_path], progress_printer(quiet))
    config = config.replace(seed=kw["seed"])  # the model's recorded seed without --seed
    if Path(out).exists():  # refuse to overwrite before loading anything; create nothing yet
        prepare_out_dir(out, force, expect=tuple(f for n in names for f in registry.get(n).files))
    dataset = load_checked_dataset(kw, rec, calibrates=any(registry.get(n).quantized for n in names))
    handle = load_model_from(model_path, dataset, kw)
    from edgekit.errors import TargetsFailed, ValidationError

    try:
        if no_validate:
            res = raise_failed(export(handle, dataset, names, out, force=force, config=config,
                                      progress=progress_printer(quiet)))
        else:
            res = export_and_validate(handle, dataset, names, out, force=force, export_config=config,
                                      validate_config=vconfig, progress=progress_printer(quiet))
    except TargetsFailed as e:
        if getattr(e, "result", None) is not None:
            _print_result(e.result, out)
        raise
    except ValidationError as e:
        if getattr(e, "result", None) is not None and e.result.validation is not None:
            click.echo(table(e.result.validation.rows(), VALIDATION_COLUMNS))
        raise
    _print_result(res, out)


def _print_result(res, out) -> None:
    """The files of each built target, the Edge TPU and micro facts, and the validation table."""
    for name, o in res.outputs.items():
        files = ", ".join(f.path for f in o.files)
        click.echo(f"{name}: {files}")
        if name == "edgetpu":
            a = o.info["analysis"]
            click.echo(f"  Edge TPU: {a['summary']}; parameters {a['parameter_bytes']:,} bytes "
                       f"({'fits' if a['fits_cache'] else 'exceeds'} the 8 MiB cache); compiler: "
                       f"{o.info['compiler']['status']}")
        if name == "micro":
            click.echo(f"  TFLite Micro: arena {o.info['arena_bytes']:,} bytes, flash ~{o.info['flash_bytes_estimate']:,} bytes")
    if res.validation is not None:
        click.echo(table(res.validation.rows(), VALIDATION_COLUMNS))
        click.echo(f"-> {out}/validation.md, {out}/validation.json, {out}/manifest.json")


@click.command("validate")
@click.argument("artifacts", nargs=-1, required=True, metavar="ARTIFACT...")
@click.option("--reference", type=click.Path(), default=None,
              help="The Keras model the artifacts came from (optional with --device and one artifact: the "
                   "artifact on this host is then the reference).")
@model_dataset_options(mismatch_flag=False)
@_validation_options
@click.option("--device", "devices", multiple=True, metavar="URI",
              help="Also run on this device: ssh://user@host[:port][?python=...], adb://SERIAL, exec://PYTHON "
                   "(repeatable). LiteRT/onnxruntime targets; the device needs Python 3.8+, numpy and the runtime.")
@click.option("--device-timeout", type=float, default=120.0, show_default=True, metavar="S",
              help="Seconds each device step (reach, copy, run) may take.")
@click.option("--out", type=click.Path(), default=None,
              help="Folder for validation.json/.md and the manifest (default: the first artifact's folder).")
@click.option("--force", is_flag=True, help="Validate again into a folder that holds validation.json (its other "
                                            "targets' results are kept).")
@quiet_option
@signature_option
@trust_option
def validate_cmd(artifacts, reference, max_diff, threads, runs, devices, device_timeout, out, force, quiet,
                 **kw) -> None:
    """Run ARTIFACT(s) (.tflite, .onnx, or TARGET=PATH) on their runtimes against the Keras reference,
    and with --device on real devices too (same metrics; latency measured there).

    \b
    Example:
      edgekit validate run/export/model_int8.tflite micro=run/export/micro/model_int8.tflite \\
          --reference run/model.keras --dataset digits
      edgekit validate run/export/model_int8.tflite --reference run/model.keras --device ssh://pi@raspberrypi
    """
    from pathlib import Path

    from edgekit.validate import parse_artifacts

    items = parse_artifacts(artifacts)  # bad names/paths fail before the dataset loads
    folder = Path(out) if out is not None else next(iter(items.values())).parent
    with out_lock(folder, "validate"):
        _validate(items, folder, reference, max_diff, threads, runs, devices, device_timeout, force, quiet, kw)


def _validate(items, folder, reference, max_diff, threads, runs, devices, device_timeout, force, quiet, kw) -> None:
    """validate_cmd under the lock of its output ``folder``."""
    from edgekit.export import load_targets
    from edgekit.validate import validate
    from edgekit.validate.safety import check_file
    from edgekit.validate.validator import check_validation_out

    config = _validate_config(max_diff, threads, runs, devices=devices, device_timeout_s=device_timeout)
    runtimes = {name: load_targets().get(name).runtime for name in items}
    if devices:
        from edgekit.validate.device import check_device_targets

        check_device_targets(runtimes)
    for name, p in items.items():
        check_file(p, runtimes[name])
    if reference is not None:
        _check_model_path(reference)
    check_validation_out(folder, force)
    rec = resolve_dataset_options(kw, [reference, *items.values()], progress_printer(quiet))
    dataset = load_checked_dataset(kw, rec, calibrates=False)
    handle = load_model_from(reference, dataset, kw) if reference is not None else None
    res = validate(items, handle, dataset, folder, config=config, progress=progress_printer(quiet), check=False,
                   force=force)
    click.echo(f"reference {res.reference['path']}: accuracy {res.reference['accuracy']:.4f} on "
               f"{res.reference['samples']} images")
    click.echo(table([r for r in res.rows() if r["target"] in items], VALIDATION_COLUMNS))
    if devices:
        from edgekit.validate.device import device_rows

        click.echo("")
        click.echo(table(device_rows({n: t for n, t in res.targets.items() if n in items})))
    if res.errors:
        from edgekit.errors import TargetsFailed

        raise TargetsFailed(res.errors, [n for n in items if n in res.targets])
    if res.failures:
        raise res.failures[0]


@click.command("benchmark")
@click.argument("model_path", metavar="MODEL", type=click.Path())
@model_dataset_options()
@click.option("--out", required=True, type=click.Path(), help="Folder for the artifacts, benchmark.csv and benchmark.md.")
@click.option("--target", "targets", multiple=True, metavar="NAME", help="Only these targets (default: all).")
@_representative_option
@_validation_options
@force_option
@quiet_option
@signature_option
@trust_option
@locked_out("benchmark")
def benchmark_cmd(model_path, out, targets, representative_samples, max_diff, threads, runs, force, quiet, **kw) -> None:
    """Export MODEL to every target, run each on its runtime and print one comparison table.

    \b
    Example:
      edgekit benchmark run/model.keras --dataset digits --out run/bench
    """
    from pathlib import Path

    from edgekit.artifacts import prepare_out_dir
    from edgekit.export import ExportConfig, load_targets, resolve_targets
    from edgekit.validate.bench import benchmark

    names = resolve_targets(targets) if targets else None
    _check_model_path(model_path)
    rec = resolve_dataset_options(kw, [model_path], progress_printer(quiet))
    config = ExportConfig(representative_samples=representative_samples, seed=kw["seed"])
    vconfig = _validate_config(max_diff, threads, runs, probe=False)
    if Path(out).exists():
        prepare_out_dir(out, force, expect=("benchmark.csv", "benchmark.md"))
    registry = load_targets()
    calibrates = any(registry.get(n).quantized for n in names or registry.names())
    dataset = load_checked_dataset(kw, rec, calibrates=calibrates)
    handle = load_model_from(model_path, dataset, kw)
    rows = benchmark(handle, dataset, out, names, force=force, config=config, progress=progress_printer(quiet),
                     validate_config=vconfig)
    shown = []
    for r in rows:
        shown.append({"target": r["target"], "size": f"{r['bytes']:,}" if "bytes" in r else "",
                      "gzip": f"{r['gzip_bytes']:,}" if "gzip_bytes" in r else "",
                      "accuracy": f"{r['accuracy']:.4f}" if "accuracy" in r else "",
                      "agreement": f"{r['agreement_pct']:.2f}%" if "agreement_pct" in r else "",
                      "p50 (us)": f"{r['p50_ms'] * 1e3:.1f}" if "p50_ms" in r else "", "status": r["status"]})
    click.echo(table(shown))
    from edgekit.devices.isa import host_cpu
    from edgekit.validate.bench import cpu_notes

    for note in cpu_notes(rows, host_cpu()):
        click.echo(note)
    click.echo(f"-> {out}/benchmark.md, {out}/benchmark.csv")


COMMANDS = [export_cmd, validate_cmd, benchmark_cmd]
