"""Fuzzing the CLI: a few hundred seeded mutations of every input kind end in success or one
clean ``Error:`` line, never a traceback, a signal or a hang; hostile inputs built against each
hardening are all refused, write nothing into their sentinel folders, and no case passes 4 GiB of
memory (benchmarks/fuzz_cli.py runs more)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.fuzz.cases import Case, build_case
from tests.fuzz.common import BASE_KINDS, HOSTILE_KINDS, INPUT_KINDS, KINDS, MODEL_KINDS
from tests.fuzz.engine import classify, judge, plan, run_fuzz
from tests.fuzz.mutators import byte_mutation, text_mutation
from tests.fuzz.seeds import build_seeds, idx_bytes

CASES = int(os.environ.get("EDGEKIT_FUZZ_CASES", "300"))
SEED = int(os.environ.get("EDGEKIT_FUZZ_SEED", "0"))
MODEL_CASES = 4  # per kind of model a user brings (benchmarks/fuzz_cli.py --kinds runs hundreds)
NEW_CASES = int(os.environ.get("EDGEKIT_FUZZ_NEW_CASES", "6"))  # per input and hostile kind
NEW_KINDS = INPUT_KINDS + HOSTILE_KINDS


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return build_seeds(tmp_path_factory.mktemp("fuzz_seeds"))


@pytest.fixture(scope="module")
def fuzz(seeds, tmp_path_factory):
    todo = (plan(CASES, BASE_KINDS) + plan(MODEL_CASES * len(MODEL_KINDS), MODEL_KINDS)
            + plan(NEW_CASES * len(NEW_KINDS), NEW_KINDS))
    return run_fuzz(seeds, todo, seed=SEED, workers=2, timeout_s=120, work=tmp_path_factory.mktemp("fuzz"))


def test_every_case_ends_in_success_or_one_error_line(fuzz):
    total = fuzz.total()
    assert sum(total.values()) == CASES + MODEL_CASES * len(MODEL_KINDS) + NEW_CASES * len(NEW_KINDS)
    shown = "\n\n".join(f.describe() for f in fuzz.findings[:8])
    assert not fuzz.findings, f"{len(fuzz.findings)} of {sum(total.values())} cases did not end cleanly:\n\n{shown}"
    assert all(total[k] == 0 for k in ("crash", "traceback", "hang", "bad_error", "wrong_success", "file_written",
                                       "memory"))
    assert 0 < max(fuzz.kind_rss_mb.values()) < 4096  # every case measured, none past 4 GiB


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


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_each_input_and_hostile_kind_runs(fuzz, kind):
    """A sample of every input kind (npz, images, exec: device replies) and every hostile class ends
    cleanly; a hostile input is refused (one marked must-fail that exits 0 counts as a wrong success;
    only hostile_onnx's fixed batches and low opsets may convert)."""
    c = fuzz.counts[kind]
    assert sum(c.values()) == NEW_CASES and c["clean"] + c["success"] == NEW_CASES, dict(c)
    if kind in HOSTILE_KINDS:
        assert c["clean"] >= NEW_CASES - (2 if kind == "hostile_onnx" else 0), dict(c)
    assert fuzz.kind_rss_mb[kind] > 0


def test_some_mutations_still_run(fuzz):
    """Mutations that leave a file usable (a changed weight, an unknown-but-ignored byte) succeed."""
    assert fuzz.total()["success"] >= 0.05 * CASES
    assert fuzz.counts["keras"]["success"] > 0 and fuzz.counts["manifest"]["success"] > 0


def test_the_harness_sees_crashes_and_hangs(seeds, tmp_path):
    """A worker killed by a signal, one that exits, and one that stops answering are each recorded,
    replaced, and the cases after them still run."""
    folder = str(tmp_path / "cases")  # removed after a case that is no finding
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    cases = [Case("selftest", i, 0, what, ["__selftest__", what], folder)
             for i, what in enumerate(["segv", "exit", "hang", "fine"])]
    cases.append(Case("selftest", 4, 0, "write", ["__selftest__", "write"], folder, sentinel=str(sentinel)))
    cases.append(Case("selftest", 5, 0, "must-fail", ["--help"], folder, must_fail=True))
    cases.append(Case("alloc", 6, 0, "alloc", ["__selftest__", "alloc"], folder))
    cases.append(Case("after", 7, 0, "after", ["--help"], folder))
    res = run_fuzz(seeds, cases, workers=1, timeout_s=8, work=tmp_path / "work")
    got = {f.case.mutation: f.outcome for f in res.findings}
    assert got == {"segv": "crash", "exit": "crash", "hang": "hang", "write": "file_written",
                   "must-fail": "wrong_success"}
    assert "signal 11" in next(f.detail for f in res.findings if f.case.mutation == "segv")
    assert "the sentinel folder holds: pwned" in next(f.detail for f in res.findings if f.case.mutation == "write")
    assert res.counts["selftest"]["clean"] == 1  # "fine": an unknown command, a usage error after the restarts
    # the peak is per case: 600 MB touched in one case shows there, not in the case after it
    assert res.kind_rss_mb["alloc"] > res.kind_rss_mb["after"] + 500, res.kind_rss_mb


def test_judge_orders_the_findings(tmp_path):
    sentinel = tmp_path / "s"
    sentinel.mkdir()
    case = Case("x", 0, 0, "m", [], str(tmp_path), must_fail=True, sentinel=str(sentinel))
    assert judge(case, "success", 10 << 20) == "wrong_success"
    assert judge(case, "clean", 10 << 20) == "clean"
    assert judge(case, "clean", 5 << 30) == "memory"
    (sentinel / "pwned").write_text("x")
    assert judge(case, "clean", 5 << 30) == "file_written"


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


def _snapshot(folder: str) -> dict[str, object]:
    """Every entry under ``folder``: a file's bytes, a link's target, or what else it is."""
    out: dict[str, object] = {}
    for p in sorted(Path(folder).rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_file():
            out[rel] = p.read_bytes()
        else:
            out[rel] = ("dir",) if p.is_dir() else ("special", p.stat().st_mode)
    return out


def test_cases_are_reproducible(seeds, tmp_path):
    """A case depends only on (seed, kind, index): the replay command rebuilds the same input (planted
    paths name the case's own folder, so both builds use the same one)."""
    for kind in KINDS:
        for index in (7, 8):
            a = build_case(kind, index, 3, seeds, tmp_path)
            files_a = _snapshot(a.folder)
            b = build_case(kind, index, 3, seeds, tmp_path)
            assert (a.mutation, a.args, a.must_fail, a.sentinel) == (b.mutation, b.args, b.must_fail, b.sentinel)
            assert any(isinstance(v, bytes) for v in files_a.values()) or kind in ("hostile_data", "hostile_device")
            assert _snapshot(b.folder) == files_a, (kind, a.mutation)
            assert Path(a.sentinel).is_dir() and not any(Path(a.sentinel).iterdir())


def test_mutators_change_their_input():
    rng = np.random.default_rng(0)
    data = idx_bytes(np.arange(100, dtype=np.uint8).reshape(4, 5, 5))
    changed = sum(byte_mutation(rng, data)[0] != data for _ in range(50))
    assert changed >= 45  # a bit flip back to the original is possible, rarely
    text = json.dumps({"format": "x", "stages": {"validate": {"metrics": {"bytes": 1}}}}).encode()
    outs = [text_mutation(rng, text, json.loads, json.dumps, ("bytes",))[0] for _ in range(50)]
    assert len(set(outs)) > 40 and sum(o != text for o in outs) >= 45
