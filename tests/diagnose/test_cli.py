"""edgekit diagnose on the command line."""
from __future__ import annotations

import json


def _run(args):
    from click.testing import CliRunner

    from edgekit.cli.main import cli

    return CliRunner().invoke(cli, ["diagnose", *args])


def test_diagnose_cli_writes_table_and_files(planted_int8, tmp_path):
    model, art = planted_int8
    r = _run([str(model), str(art), "--dataset", "digits", "--samples", "100", "--no-leave-one-out",
              "--out", str(tmp_path / "d"), "--quiet"])
    assert r.exit_code == 0, r.output
    first = r.output.splitlines()[2]  # header, rule, worst layer
    assert first.startswith("bad ")
    d = json.loads((tmp_path / "d" / "diagnose.json").read_text())
    assert d["samples"] == 100 and d["layers"][0]["recovered_pt"] is None
    man = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert "diagnose" in man["stages"]


def test_diagnose_cli_float_artifact_is_one_line(planted_model, planted_int8, tmp_path):
    from edgekit.export.convert import to_tflite

    p = tmp_path / "f.tflite"
    p.write_bytes(to_tflite(planted_model, "float32"))
    r = _run([str(planted_int8[0]), str(p), "--dataset", "digits", "--quiet"])
    assert r.exit_code == 2
    assert "nothing to diagnose" in r.output and len(r.output.strip().splitlines()) == 1
