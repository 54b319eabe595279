"""The example CI workflow (examples/ci/edge-gates.yml) only uses commands and options that exist."""
from __future__ import annotations

import shlex
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from edgekit.cli.main import cli
from tests.gate.fabricate import make_run

WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "ci" / "edge-gates.yml"


def edgekit_lines() -> list[list[str]]:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["gates"]["steps"]
    out = []
    for step in steps:
        for line in str(step.get("run", "")).splitlines():
            if line.strip().startswith("edgekit "):
                out.append(shlex.split(line)[1:])
    return out


def test_workflow_shape():
    wf = yaml.safe_load(WORKFLOW.read_text())
    steps = wf["jobs"]["gates"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert "run/report.html" in upload["with"]["path"] and "!cancelled()" in upload["if"]
    assert any("GITHUB_STEP_SUMMARY" in str(s.get("run", "")) for s in steps)
    assert [line[0] for line in edgekit_lines()] == ["train", "export", "gate", "gate", "report"]


def test_every_command_line_parses():
    for args in edgekit_lines():
        cmd = cli.commands[args[0]]
        with cmd.make_context(args[0], list(args[1:]), resilient_parsing=False) as ctx:
            assert isinstance(ctx, click.Context)


def test_gate_lines_run_on_a_manifest(tmp_path):
    run = make_run(tmp_path / "run")
    base = make_run(tmp_path / "base")
    for args in (a for a in edgekit_lines() if a[0] == "gate"):
        args = [str(run) if a == "run/manifest.json" else str(base) if a == "ci/edge-baseline.json"
                else str(tmp_path / Path(a).name) if a.endswith(".xml") else a for a in args]
        r = CliRunner().invoke(cli, args)
        assert r.exit_code in (0, 1), r.output  # a gate verdict, never a usage error
        assert "tflite-int8" in r.output and (tmp_path / Path(args[args.index("--junit") + 1]).name).is_file()


@pytest.mark.parametrize("name", ["README.md", "edge-gates.yml"])
def test_example_files_exist(name):
    assert (WORKFLOW.parent / name).is_file()
