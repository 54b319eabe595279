"""The stage loop's cache, with tiny file-copying stages (no TensorFlow): a stage is reused
when its key and files are unchanged, redone when its input changed, its section changed,
a file of its manifest was altered, or it was interrupted."""
from __future__ import annotations

import types
from pathlib import Path

import pytest

from edgekit.artifacts import read_json
from edgekit.manifest import write_stage
from edgekit.stages.base import STATE, RunContext, StageCache, stage_key


class CopyStage:
    """Writes ``<section>:<input file's text>`` into its folder's out.txt (the next stage's input)."""

    gives_model = True

    def __init__(self, name: str, section: str, fail: bool = False):
        self.name, self.section, self.fail, self.calls = name, section, fail, 0

    def skip(self, ctx):
        return None

    def key(self, ctx):
        return stage_key(ctx, self.section, [ctx.model])

    def run(self, ctx):
        self.calls += 1
        if self.fail:
            raise KeyboardInterrupt
        folder = ctx.folder(self)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "out.txt").write_text(f"{self.section}:{ctx.model.read_text()}")
        write_stage(folder, self.name, [("out.txt", "text")], config={"section": self.section}, metrics={})
        return folder / "out.txt", {"extra": 1}


def loop(out: Path, source: Path, stages: list[CopyStage], force: bool = False) -> RunContext:
    """The stage loop of recipe/run.py: each stage's output is the next one's input."""
    recipe = types.SimpleNamespace(data=types.SimpleNamespace(spec="digits", limit=10))
    ctx = RunContext(recipe, out, force, lambda m: None, model=source)
    StageCache(out, force).run_all(stages, ctx)
    return ctx


@pytest.fixture
def run_dir(tmp_path):
    source = tmp_path / "source.txt"
    source.write_text("v1")
    return tmp_path / "run", source


def test_unchanged_stages_are_reused(run_dir):
    out, source = run_dir
    a, b = CopyStage("a", "s"), CopyStage("b", "t")
    ctx = loop(out, source, [a, b])
    assert [ctx.records[n]["status"] for n in "ab"] == ["ran", "ran"] and ctx.records["a"]["extra"] == 1
    assert ctx.results["a"] == out / "a" / "out.txt" and ctx.model == out / "b" / "out.txt"
    assert (out / "b" / "out.txt").read_text() == "t:s:v1"
    ctx = loop(out, source, [a, b])
    assert [ctx.records[n]["status"] for n in "ab"] == ["reused", "reused"]
    assert (a.calls, b.calls) == (1, 1) and ctx.model == out / "b" / "out.txt"
    ctx = loop(out, source, [a, b], force=True)
    assert (a.calls, b.calls) == (2, 2)


def test_a_changed_input_redoes_the_stage_and_what_follows(run_dir):
    out, source = run_dir
    a, b = CopyStage("a", "s"), CopyStage("b", "t")
    loop(out, source, [a, b])
    source.write_text("v2")  # a's input model changed
    ctx = loop(out, source, [a, b])
    assert [ctx.records[n]["status"] for n in "ab"] == ["ran", "ran"]
    assert (out / "b" / "out.txt").read_text() == "t:s:v2"


def test_a_changed_section_redoes_only_that_stage_when_its_output_is_the_same(run_dir):
    out, source = run_dir
    loop(out, source, [CopyStage("a", "s"), CopyStage("b", "t")])
    ctx = loop(out, source, [CopyStage("a", "s"), CopyStage("b", "u")])
    assert [ctx.records[n]["status"] for n in "ab"] == ["reused", "ran"]
    assert (out / "b" / "out.txt").read_text() == "u:s:v1"


def test_an_altered_file_redoes_its_stage(run_dir):
    out, source = run_dir
    loop(out, source, [CopyStage("a", "s")])
    (out / "a" / "out.txt").write_text("tampered")
    ctx = loop(out, source, [CopyStage("a", "s")])
    assert ctx.records["a"]["status"] == "ran" and (out / "a" / "out.txt").read_text() == "s:v1"


def test_an_interrupted_stage_loses_its_key_and_is_redone(run_dir):
    out, source = run_dir
    a = CopyStage("a", "s")
    loop(out, source, [a])
    assert "a" in read_json(out / STATE)
    source.write_text("v2")
    with pytest.raises(KeyboardInterrupt):
        loop(out, source, [CopyStage("a", "s", fail=True)])
    assert "a" not in read_json(out / STATE)  # removed before the stage started
    source.write_text("v1")  # back to the inputs of the completed run: still redone
    ctx = loop(out, source, [a])
    assert ctx.records["a"]["status"] == "ran" and a.calls == 2
