"""CLI command doctor: versions, known-broken combinations, available export targets, CPU int8 features."""
from __future__ import annotations

import json

import click

from edgekit.cli.common import is_tty, table


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help='Print one JSON object: {"versions", "checks", "ok", "seconds"}.')
def doctor_cmd(as_json: bool) -> None:
    """Check this installation: versions, Keras/tfmot setup, export targets, CPU int8 features.

    Each problem comes with its fix. Exits 1 when a required check fails (warnings do not).
    Takes a few seconds: it imports TensorFlow and runs a tiny model through each target.
    """
    from edgekit.doctor import report

    show = (lambda msg: click.echo(f"{msg} ...", err=True)) if is_tty() and not as_json else None
    r = report(show)
    if as_json:
        click.echo(json.dumps(r, indent=2))
    else:
        click.echo(table([{"package": k, "version": v or "not installed"} for k, v in r["versions"].items()]))
        click.echo()
        click.echo(table([{"check": c["name"], "status": c["status"], "detail": c["detail"]} for c in r["checks"]]))
        fixes = [c for c in r["checks"] if c["status"] != "ok" and c["fix"]]
        if fixes:
            click.echo("\nfixes:")
            for c in fixes:
                click.echo(f"  {c['name']} ({c['status']}): {c['fix']}")
        n = {s: sum(c["status"] == s for c in r["checks"]) for s in ("ok", "warn", "fail")}
        click.echo(f"\n{n['ok']} ok, {n['warn']} warning{'s' * (n['warn'] != 1)}, "
                   f"{n['fail']} failure{'s' * (n['fail'] != 1)} ({r['seconds']:.1f} s)")
    if not r["ok"]:
        raise click.exceptions.Exit(1)


COMMANDS = [doctor_cmd]
