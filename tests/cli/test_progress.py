"""The CLI's progress: a bar on a terminal, plain lines without one, nothing with --quiet."""
from __future__ import annotations

import io

import click
from click.testing import CliRunner

from edgekit.cli.progress import Progress, counted, plain


def test_counted_messages():
    assert counted("epoch 3/10  loss 0.2") == ("epoch", 3, 10)
    assert counted("tflite-int8: running m.tflite on litert (target 2/5)") == ("target", 2, 5)
    assert counted("[4/8] lr=0.01") == ("step", 4, 8)
    assert counted("accuracy 0.9/1") is None and counted("no count here") is None and counted("epoch 11/10") is None


def test_without_a_terminal_lines_are_plain():
    out = io.StringIO()
    show = Progress(stream=out)  # a StringIO is no terminal
    show("epoch 1/2 \x1b[31mred\x1b[0m\r")
    show("epoch 2/2 done")
    assert out.getvalue() == "epoch 1/2 red\nepoch 2/2 done\n" and "\x1b" not in out.getvalue()
    assert plain("a\tb\x07c\n") == "a\tbc\n"


def test_on_a_terminal_a_bar_is_drawn():
    out = io.StringIO()
    show = Progress(live=True, stream=out)
    show("epoch 1/3 loss 1.0")
    show("epoch 3/3 loss 0.5")  # the last step ends the bar
    assert show._bar is None and "\x1b" in out.getvalue() and "epoch 1/3 loss 1.0" in out.getvalue()


def test_quiet_prints_nothing_and_the_global_option_reaches_commands():
    out = io.StringIO()
    Progress(quiet=True, stream=out)("epoch 1/2")
    assert out.getvalue() == ""
    from edgekit.cli.main import cli

    @cli.command("_progress_probe")
    def probe() -> None:
        Progress()("target 1/1 visible")

    try:
        loud = CliRunner().invoke(cli, ["_progress_probe"])
        quiet = CliRunner().invoke(cli, ["--quiet", "_progress_probe"])
    finally:
        cli.commands.pop("_progress_probe")
    assert loud.exit_code == 0 and "target 1/1 visible" in loud.output and "\x1b" not in loud.output
    assert quiet.exit_code == 0 and quiet.output == ""
