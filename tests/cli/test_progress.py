"""The CLI's progress: events move one bar per stage on a terminal, plain lines without one,
nothing with --quiet; text is never parsed into a bar."""
from __future__ import annotations

import io
import pickle

import click
from click.testing import CliRunner

from edgekit.cli.common import table
from edgekit.cli.progress import Display, close_all, plain
from edgekit.progress import Progress, counted, prefixed


def test_an_event_is_its_message_line():
    e = counted("epoch", 3, 10, "epoch 3/10  loss 0.2", loss=0.2)
    assert isinstance(e, str) and e == "epoch 3/10  loss 0.2" and "loss" in e and f"> {e}" == "> epoch 3/10  loss 0.2"
    assert (e.stage, e.step, e.total, dict(e.metrics), e.done) == ("epoch", 3, 10, {"loss": 0.2}, False)
    assert Progress("target", 2, 2) == "target 2/2" and Progress("target", 2, 2).done
    assert Progress("candidate", 4) == "candidate 4" and not Progress("candidate", 4).done
    back = pickle.loads(pickle.dumps(e))
    assert isinstance(back, Progress) and (back.stage, back.step, back.total, back.message) == ("epoch", 3, 10, e)


def test_prefixed_keeps_events():
    got: list[str] = []
    say = prefixed(got.append, "  ")
    say(counted("epoch", 1, 2, "epoch 1/2"))
    say("plain")
    assert got == ["  epoch 1/2", "  plain"] and isinstance(got[0], Progress) and got[0].stage == "epoch"
    assert not isinstance(got[1], Progress)


def test_without_a_terminal_lines_are_plain():
    out = io.StringIO()
    show = Display(stream=out)  # a StringIO is no terminal
    show(counted("epoch", 1, 2, "epoch 1/2 \x1b[31mred\x1b[0m\r"))
    show("epoch 2/2 done")
    assert out.getvalue() == "epoch 1/2 red\nepoch 2/2 done\n" and "\x1b" not in out.getvalue()
    assert plain("a\tb\x07c\n") == "a\tbc\n"


def test_text_never_makes_a_bar():
    out = io.StringIO()
    show = Display(live=True, stream=out)
    for line in ("warning: conv3 9/64 channels are empty", "epoch 3/10 loss 0.2", "[2/5] cnn-adam-cosine"):
        show(line)
    assert show._bar is None and show.stages == [] and "\x1b" not in out.getvalue()
    assert out.getvalue().splitlines()[0] == "warning: conv3 9/64 channels are empty"


def test_one_bar_per_stage_reused_and_removed_at_its_total():
    out = io.StringIO()
    show = Display(live=True, stream=out)
    show(counted("epoch", 1, 3, "epoch 1/3 loss 1.0"))
    assert show.stages == ["epoch"] and "\x1b" in out.getvalue() and "epoch 1/3 loss 1.0" in out.getvalue()
    show(counted("target", 1, 2))
    show(counted("epoch", 1, 8))  # a new run of the stage: the same bar, reset
    show(counted("epoch", 4, 8))
    assert show.stages == ["epoch", "target"] and len(show._bar.tasks) == 2
    show(counted("epoch", 8, 8))  # its last step ends it
    assert show.stages == ["target"] and len(show._bar.tasks) == 1
    show(counted("target", 2, 2))  # no bar left: the display stops
    assert show._bar is None and show.stages == []
    show(counted("candidate", 3, None, "candidate 3"))  # no total: a line only
    assert show._bar is None


def test_many_runs_never_pile_up_bars():
    show = Display(live=True, stream=io.StringIO())
    nested = prefixed(show, "    ")  # as optimize passes it to each candidate's fine-tune
    for candidate in range(30):
        show(counted("budget s", 10 * candidate, 600, f"candidate {candidate + 1}"))
        for e in range(1, 8):
            nested(counted("epoch", e, 8))
            assert len(show._bar.tasks) == 2
        nested(counted("epoch", 8, 8))
        assert show.stages == ["budget s"] and len(show._bar.tasks) == 1
    show.close()


def test_close_all_stops_displays_before_tables():
    out = io.StringIO()
    show = Display(live=True, stream=out)
    show(counted("export", 1, 4))
    assert show._bar is not None
    table([{"a": 1}])  # a final table is coming: every display stops first
    assert show._bar is None
    show(counted("export", 2, 4))  # a later event starts a new one
    assert show._bar is not None
    close_all()
    assert show._bar is None


def test_plain_table_without_a_terminal():
    text = table([{"check": "size", "result": "FAIL", "x": 0.123456}, {"check": "latency_p50", "result": "PASS"}])
    assert text.splitlines() == ["check        result  x", "-----------  ------  ------",
                                 "size         FAIL    0.1235", "latency_p50  PASS"]
    assert table([]) == "(empty)"


def test_rich_table_on_a_terminal_fits_its_width(monkeypatch):
    import edgekit.cli.common as common

    monkeypatch.setattr(common, "_stdout_is_terminal", lambda: True)
    monkeypatch.setenv("COLUMNS", "40")
    rows = [{"check": "size", "detail": "a long explanation " * 6, "result": "FAIL"}]
    text = table(rows)
    shown = [plain(line) for line in text.splitlines()]
    assert "\x1b[" in text and all(len(line) <= 40 for line in shown)
    assert "check" in shown[0] and any("FAIL" in line for line in shown)
    assert "".join(shown).count("explanation") == 6  # wrapped, not cut


def test_quiet_prints_nothing_and_the_global_option_reaches_commands():
    out = io.StringIO()
    Display(quiet=True, stream=out)(counted("epoch", 1, 2))
    assert out.getvalue() == ""
    from edgekit.cli.main import cli

    @cli.command("_progress_probe")
    def probe() -> None:
        Display()(counted("target", 1, 1, "target 1/1 visible"))
        click.echo(table([{"a": 1}]))

    try:
        loud = CliRunner().invoke(cli, ["_progress_probe"])
        quiet = CliRunner().invoke(cli, ["--quiet", "_progress_probe"])
        verbose = CliRunner().invoke(cli, ["--verbose", "_progress_probe"])
    finally:
        cli.commands.pop("_progress_probe")
    assert loud.exit_code == 0 and "target 1/1 visible" in loud.output and "\x1b" not in loud.output
    assert quiet.exit_code == 0 and quiet.output == "a\n-\n1\n"
    assert verbose.exit_code == 0 and "target 1/1 visible" in verbose.output
