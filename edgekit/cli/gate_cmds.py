"""CLI commands of the CI stage: gate (size/latency/accuracy limits) and report (markdown + HTML).

Neither imports TensorFlow: a gate step in CI starts in a fraction of a second.
"""
from __future__ import annotations

import json
from typing import Any

import click

from edgekit.cli.common import force_option, quiet_option, table

def _load_config_file(path: str) -> dict[str, Any]:
    """The gate limits of a YAML/JSON file: a recipe's ``gates`` section or a bare mapping."""
    import yaml

    from edgekit.errors import InputError

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise InputError(f"--config {path!r} does not exist.") from None
    except (OSError, ValueError, yaml.YAMLError) as e:  # ValueError: bad UTF-8, a date like 2024-13-45
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"--config {path!r} is not a readable YAML/JSON file: {first}") from None
    except RecursionError:
        raise InputError(f"--config {path!r} is nested too deeply to be a gate config.") from None
    if isinstance(data, dict) and "gates" in data:
        data = data["gates"]
    if data is not None and not isinstance(data, dict):
        raise InputError(f"--config {path!r} must hold a mapping of gate limits (or a recipe with a gates section).")
    return data or {}


@click.command("gate")
@click.argument("manifest", metavar="MANIFEST", type=click.Path())
@click.option("--target", "targets", multiple=True, metavar="NAME",
              help="Validated target to gate, e.g. tflite-int8 (repeatable; default: every validated target).")
@click.option("--max-size", metavar="SIZE", help="Largest artifact: B, KB (1000 B), KiB (1024 B), MB or MiB, e.g. 40KB.")
@click.option("--max-gzip-size", metavar="SIZE", help="Largest artifact after gzip -9, e.g. 30KiB.")
@click.option("--max-latency-ms", metavar="MS", help="Slowest batch-1 latency in milliseconds, e.g. 0.05.")
@click.option("--latency-stat", type=click.Choice(["p50", "p90"]), default=None,
              help="Latency percentile the latency gates use.  [default: p50]")
@click.option("--max-accuracy-drop", metavar="PT",
              help="Most accuracy lost against the float reference model, in percentage points, e.g. 0.5.")
@click.option("--max-accuracy-drop-vs-trained", metavar="PT",
              help="Most accuracy lost against the model as trained (before compression), in percentage points; "
                   "needs a run manifest with a train stage.")
@click.option("--min-accuracy", metavar="ACC", help="Lowest holdout accuracy: a fraction (0.97) or percent (97%).")
@click.option("--min-agreement", metavar="PCT", help="Lowest top-1 agreement with the reference model, in percent, e.g. 99.")
@click.option("--max-abs-diff", metavar="X", help="Largest absolute output difference against the reference model.")
@click.option("--baseline", type=click.Path(), metavar="MANIFEST",
              help="Baseline manifest (e.g. from the main branch) for --max-size-growth / --max-accuracy-fall / "
                   "--max-latency-growth.")
@click.option("--max-size-growth", metavar="PCT", help="Most the artifact may grow against the baseline, e.g. 5%.")
@click.option("--max-accuracy-fall", metavar="PT",
              help="Most accuracy may fall against the baseline, in percentage points, e.g. 0.5.")
@click.option("--max-latency-growth", metavar="PCT",
              help="Most the latency may grow against the baseline, e.g. 10%; compared only when the baseline was "
                   "measured on the same CPU class (otherwise skipped, saying why).")
@click.option("--max-device-latency", multiple=True, metavar="TARGET@DEVICE=LIMIT",
              help="Latency measured on a device by `edgekit validate --device`, e.g. "
                   "tflite-int8@ssh://pi@raspberrypi=150us (ms without a unit). Repeatable.")
@click.option("--max-latency-ratio", multiple=True, metavar="TARGET:OTHER=R",
              help="Latency relative to another target of the same run (robust on noisy CI machines), "
                   "e.g. tflite-int8:tflite=0.8. Repeatable.")
@click.option("--config", "config_file", type=click.Path(), metavar="FILE",
              help="YAML/JSON with the limits: a recipe (its gates section) or a bare mapping; options override it.")
@click.option("--junit", type=click.Path(), metavar="FILE", help="Also write the checks as JUnit XML (one testcase each).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of a table.")
@force_option
def gate_cmd(manifest: str, config_file: str | None, junit: str | None, as_json: bool, force: bool, **kw: Any) -> None:
    """Check a run's MANIFEST against size, latency and accuracy limits.

    Exit status: 0 when every gate passes, 1 when one fails, 2 for a usage or input error
    (unknown target, no limits, a manifest that is not edgekit's or whose files changed).

    \b
    Example:
      edgekit gate run/manifest.json --target tflite-int8 --max-size 40KB \\
          --max-latency-ms 0.05 --max-accuracy-drop 0.5 --min-agreement 99 --junit gates.xml
    """
    from pathlib import Path

    from edgekit.errors import OutputExistsError, UsageError
    from edgekit.gate import GateConfig, run_gates, write_junit

    config = GateConfig.from_dict(_load_config_file(config_file), path="gates") if config_file else GateConfig()
    given = {k: v for k, v in kw.items() if v not in (None, ())}
    if given:  # command-line options override the file's limits
        cli_config = GateConfig.from_dict(given, path="--")
        config = config.replace(**{k: getattr(cli_config, k) for k in given})
    if not config.has_checks:
        raise UsageError("No gate limits given. Use at least one of --max-size, --max-gzip-size, --max-latency-ms, "
                         "--max-accuracy-drop, --max-accuracy-drop-vs-trained, --min-accuracy, --min-agreement, --max-abs-diff, --max-latency-ratio, "
                         "--max-device-latency, --max-size-growth, --max-accuracy-fall or --max-latency-growth (with --baseline), "
                         "or --config FILE.")
    if junit and Path(junit).exists() and not force:
        raise OutputExistsError(f"--junit {junit!r} already exists. Use --force to overwrite it, or choose another path.")
    report = run_gates(manifest, config)
    if junit:
        write_junit(report, junit)
    for c in report.checks:
        if c.skipped:
            click.echo(f"Warning: {c.target} {c.name} not checked: {c.detail}", err=True)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        rows = report.rows()
        cols = ["check", "target", "measured", "limit", "result"] + (["detail"] if any(r["detail"] for r in rows) else [])
        click.echo(table(rows, cols))
        click.echo("")
        if report.passed:
            click.echo(report.summary())
    report.raise_if_failed()


@click.command("report")
@click.argument("run_dir", metavar="DIR", type=click.Path())
@click.option("--out", type=click.Path(), default=None, help="Folder for report.md and report.html (default: DIR).")
@force_option
@quiet_option
def report_cmd(run_dir: str, out: str | None, force: bool, quiet: bool) -> None:
    """Write DIR/report.md and a self-contained DIR/report.html from a run's manifest.

    The HTML holds everything inline (plots as PNG): training curves, the compression table,
    the per-target validation table and size/latency-vs-accuracy plots. The markdown is the
    same content for a CI job summary (e.g. cat report.md >> $GITHUB_STEP_SUMMARY).
    """
    from edgekit.report import write_report

    md, html = write_report(run_dir, out=out, force=force)
    if not quiet:
        click.echo(f"wrote {md} and {html} ({html.stat().st_size / 1000:.0f} KB, self-contained)")


COMMANDS = [gate_cmd, report_cmd]
