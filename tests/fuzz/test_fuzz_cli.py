"""Fuzzing the CLI: a few hundred seeded mutations of every input kind end in success or one
clean ``Error:`` line, never a traceback, a signal or a hang (benchmarks/fuzz_cli.py runs more)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.fuzz.cases import Case, build_case
from tests.fuzz.common import BASE_KINDS, KINDS, MODEL_KINDS
from tests.fuzz.engine import classify, plan, run_fuzz
from tests.fuzz.mutators import byte_mutation, text_mutation
from tests.fuzz.seeds import build_seeds, idx_bytes

CASES = int(os.environ.get("EDGEKIT_FUZZ_CASES", "300"))
SEED = int(os.environ.get("EDGEKIT_FUZZ_SEED", "0"))
MODEL_CASES = 4  # per kind of model a user brings (benchmarks/fuzz_cli.py --kinds runs hundreds)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return build_seeds(tmp_path_factory.mktemp("fuzz_seeds"))


@pytest.fixture(scope="module")
def fuzz(seeds, tmp_path_factory):
    todo = plan(CASES, BASE_KINDS) + plan(MODEL_CASES * len(MODEL_KINDS), MODEL_KINDS)
    return run_fuzz(seeds, todo, seed=SEED, workers=2, timeout_s=120, work=tmp_path_factory.mktemp("fuzz"))


def test_every_case_ends_in_success_or_one_error_line(fuzz):
    total = fuzz.total()
    assert sum(total.values()) == CASES + MODEL_CASES * len(MODEL_KINDS)
    shown = "\n\n".join(f.describe() for f in fuzz.findings[:8])
    assert not fuzz.findings, f"{len(fuzz.findings)} of {CASES} cases did not end cleanly:\n\n{shown}"
    assert total["crash"] == total["traceback"] == total["hang"] == total["bad_error"] == 0


@pytest.mark.parametrize("kind", BASE_KINDS)
def test_each_kind_is_exercised(fuzz, kind):
    """Every kind gets its share of cases and most of them are rejected with a clean error,
    so a regression that lets damage through (or turns errors into tracebacks) shows here."""
    c = fuzz.counts[kind]
    assert sum(c.values()) >= CASES // len(BASE_KINDS)
    assert c["clean"] >= 0.25 * sum(c.values()), dict(c)
    assert len(fuzz.errors[kind]) >= 3  # several different problems named, not one catch-all message


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_each_model_kind_runs_through_inspect(fuzz, kind):
    """A few mutated Keras 3 / SavedModel / ONNX inputs per run end cleanly (the benchmark runs hundreds)."""
    c = fuzz.counts[kind]
    assert c["clean"] + c["success"] == sum(c.values()) == MODEL_CASES, dict(c)


def test_some_mutations_still_run(fuzz):
    """Mutations that leave a file usable (a changed weight, an unknown-but-ignored byte) succeed."""
    assert fuzz.total()["success"] >= 0.05 * CASES
    assert fuzz.counts["keras"]["success"] > 0 and fuzz.counts["manifest"]["success"] > 0


def test_the_harness_sees_crashes_and_hangs(seeds, tmp_path):
    """A worker killed by a signal, one that exits, and one that stops answering are each recorded,
    replaced, and the cases after them still run."""
    folder = str(tmp_path)
    cases = [Case("selftest", i, 0, what, ["__selftest__", what], folder)
             for i, what in enumerate(["segv", "exit", "hang", "fine"])]
    res = run_fuzz(seeds, cases, workers=1, timeout_s=8, work=tmp_path / "work")
    got = {f.case.mutation: f.outcome for f in res.findings}
    assert got == {"segv": "crash", "exit": "crash", "hang": "hang"}
    assert "signal 11" in next(f.detail for f in res.findings if f.case.mutation == "segv")
    assert res.counts["selftest"]["clean"] == 1  # "fine": an unknown command, a usage error after the restarts


@pytest.mark.parametrize("reply,outcome", [
    ({"exit_code": 0, "stdout": "ok\n", "stderr": "", "exception": None}, "success"),
    ({"exit_code": 2, "stdout": "", "stderr": "progress\nError: 'x.tflite' is damaged.\n", "exception": None},
     "clean"),
    ({"exit_code": 2, "stdout": "", "stderr": "Error: not valid YAML\n  in \"<unicode string>\", position 3\n",
      "exception": None}, "bad_error"),
    ({"exit_code": 1, "stdout": "", "stderr": "", "exception": None}, "bad_error"),
    ({"exit_code": 1, "stdout": "", "stderr": "", "exception": "Traceback (most recent call last):\n ValueError"},
     "traceback"),
    ({"exit_code": 2, "stdout": "", "stderr": "Traceback (most recent call last):\n...\nError: x\n",
      "exception": None}, "traceback"),
])
def test_classify(reply, outcome):
    assert classify(reply) == outcome


def test_cases_are_reproducible(seeds, tmp_path):
    """A case depends only on (seed, kind, index): the replay command rebuilds the same input."""
    for kind in KINDS:
        a = build_case(kind, 7, 3, seeds, tmp_path / "a")
        b = build_case(kind, 7, 3, seeds, tmp_path / "b")
        assert a.mutation == b.mutation
        assert a.args == [arg.replace(b.folder, a.folder) for arg in b.args]
        files_a = sorted(p.relative_to(a.folder) for p in Path(a.folder).rglob("*") if p.is_file())
        files_b = sorted(p.relative_to(b.folder) for p in Path(b.folder).rglob("*") if p.is_file())
        assert files_a == files_b and files_a
        for rel in files_a:
            assert (Path(a.folder) / rel).read_bytes() == (Path(b.folder) / rel).read_bytes()


def test_mutators_change_their_input():
    rng = np.random.default_rng(0)
    data = idx_bytes(np.arange(100, dtype=np.uint8).reshape(4, 5, 5))
    changed = sum(byte_mutation(rng, data)[0] != data for _ in range(50))
    assert changed >= 45  # a bit flip back to the original is possible, rarely
    text = json.dumps({"format": "x", "stages": {"validate": {"metrics": {"bytes": 1}}}}).encode()
    outs = [text_mutation(rng, text, json.loads, json.dumps, ("bytes",))[0] for _ in range(50)]
    assert len(set(outs)) > 40 and sum(o != text for o in outs) >= 45
