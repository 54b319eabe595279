"""CLI command ``edgekit diagnose``: per-layer error of a quantized artifact, and its repair."""
from __future__ import annotations

import click

from edgekit.cli.common import (
    force_option, load_checked_dataset, model_dataset_options, progress_printer, quiet_option, resolve_dataset_options,
    table, trust_option,
)
from edgekit.locking import locked_out


@click.command("diagnose")
@click.argument("model_path", metavar="MODEL", type=click.Path())
@click.argument("artifact", metavar="ARTIFACT", type=click.Path())
@model_dataset_options()
@click.option("--out", type=click.Path(), default=None, help="Folder for diagnose.json/.md/.png and the manifest.")
@click.option("--samples", type=int, default=500, show_default=True, help="Holdout images compared.")
@click.option("--no-leave-one-out", is_flag=True, help="Skip re-exporting with each layer in float (faster; --fix then goes by the noise each layer adds: "
                   "the way for models with hundreds of layers).")
@click.option("--fix", is_flag=True, help="Find the fewest layers to repair, re-export and re-validate.")
@click.option("--repair", type=click.Choice(["keep-float", "int16"]), default="keep-float", show_default=True,
              help="--fix: keep the layers' ops in float32, or give them 16-bit activations and 8-bit weights "
                   "(pip install 'edgekit[quantizer]').")
@click.option("--max-accuracy-drop", type=float, default=0.5, show_default=True,
              help="--fix: the drop against float (points) to reach.")
@click.option("--min-agreement", type=click.FloatRange(0, 100, min_open=True), default=None,
              help="--fix: also reach this top-1 agreement with float (%%), e.g. 98.")
@click.option("--representative-samples", type=int, default=300, show_default=True,
              help="Training images used to calibrate the re-exports.")
@force_option
@quiet_option
@trust_option
@locked_out("diagnose")
def diagnose_cmd(model_path, artifact, out, samples, no_leave_one_out, fix, repair, max_accuracy_drop, min_agreement,
                 representative_samples, force, quiet, **kw) -> None:
    """Which Keras layer of MODEL costs the quantized ARTIFACT (.tflite or .onnx) its accuracy.

    \b
    Example:
      edgekit diagnose run/model.keras run/export/model_int8.tflite --dataset digits --fix --out run/diagnose
    """
    from pathlib import Path

    from edgekit.diagnose import diagnose, output, propose_fix
    from edgekit.diagnose.api import fix_layers
    from edgekit.errors import InputError

    for p in (model_path, artifact):
        if not Path(p).exists():
            raise InputError(f"File {p!r} does not exist.")
    repair = repair.replace("-", "_")
    if fix:
        from edgekit.diagnose.api import TARGET_OF, check_repair

        check_repair(TARGET_OF.get(Path(artifact).suffix.lower(), "tflite-int8"), repair)  # before any work
    if out and Path(out).exists():
        from edgekit.artifacts import prepare_out_dir

        prepare_out_dir(out, force, expect=output.FILES)
    say = progress_printer(quiet)
    rec = resolve_dataset_options(kw, [model_path, artifact], say)
    dataset = load_checked_dataset(kw, rec, calibrates=True)  # the layers' re-exports calibrate on it
    res = diagnose(model_path, artifact, dataset, samples=samples, leave_one_out=not no_leave_one_out,
                   representative_samples=representative_samples, progress=say)
    if fix:
        res.fix = propose_fix(model_path, res, dataset, max_drop_pt=max_accuracy_drop, min_agreement=min_agreement,
                              representative_samples=representative_samples, repair=repair, progress=say)
    click.echo(table(output.rows(res), output.COLUMNS))
    click.echo(output.summary(res.to_dict()))
    repair, layers = fix_layers(res.fix) if fix else (repair, [])
    if layers and out:
        from edgekit.export import ExportConfig
        from edgekit.validate.step import export_and_validate

        fixed = Path(out) / "fixed"
        step = export_and_validate(model_path, dataset, res.target, fixed, force=force, progress=say,
                                   export_config=ExportConfig(representative_samples=representative_samples,
                                                              **{repair: tuple(layers)}))
        row = step.validation.rows()[0]
        how = "in float" if repair == "keep_float" else "at 16-bit activations"
        click.echo(f"re-exported with {', '.join(layers)} {how}: {fixed / step.outputs[res.target].primary}"
                   f" (validated: accuracy {row.get('accuracy')}, drop {row.get('drop (pt)')} pt, "
                   f"agreement {row.get('agreement')})")
    if out:
        output.write(res, out, force=force, dataset=dataset.info)
        click.echo(f"-> {out}/diagnose.md, {out}/diagnose.json, {out}/diagnose.png")


COMMANDS = [diagnose_cmd]
