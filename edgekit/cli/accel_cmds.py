"""CLI commands of hardware acceleration: devices."""
from __future__ import annotations

import json

import click


@click.command("devices")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def devices_cmd(as_json: bool) -> None:
    """Show CPU features (AVX2, AVX-512, VNNI, BF16), GPUs, TPUs and the strategy `auto` picks."""
    from edgekit.train.devices import CPU_FEATURES, report

    r = report()
    if as_json:
        click.echo(json.dumps(r.to_dict(), indent=2))
        return
    click.echo(f"cpu        {r.cpu_model} ({r.cpu_cores} cores)")
    feats = ", ".join(CPU_FEATURES[f] for f in r.cpu_features) or "none of the tracked features"
    click.echo(f"features   {feats}")
    click.echo(f"gpus       {', '.join(r.gpus) if r.gpus else 'none'}")
    click.echo(f"tpus       {', '.join(r.tpus) if r.tpus else 'none'}")
    click.echo(f"auto       --strategy auto -> {r.auto_strategy}")
    click.echo(f"precision  --mixed-precision -> {r.mixed_precision_policy}")
    click.echo(f"tensorflow {r.tensorflow}")
    for note in r.notes:
        click.echo(f"note       {note}")


COMMANDS = [devices_cmd]
