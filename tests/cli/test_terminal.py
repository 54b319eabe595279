"""What a real terminal shows: edgekit run under a pseudo-terminal, its output replayed on a
tiny terminal emulator (carriage returns, cursor moves, erase-line), the final screen checked.

A progress display that is still open when a table and an error are printed erases the
table's rows on a real terminal; here the rows must all be on the final screen.
"""
from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.gate.fabricate import make_run

ROOT = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 100, 30
_TOKEN = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b.|[\r\n\b]|[^\x1b\r\n\b]")


def screen_of(output: str, width: int = WIDTH) -> list[str]:
    """The text a terminal ``width`` columns wide shows after ``output`` (scrollback included)."""
    lines: list[list[str]] = [[]]
    row = col = 0

    def cell(r: int) -> list[str]:
        while len(lines) <= r:
            lines.append([])
        return lines[r]

    for m in _TOKEN.finditer(output):
        tok, params, final = m.group(0), m.group(1), m.group(2)
        n = int(params.split(";")[0]) if params and params.split(";")[0].isdigit() else None
        if final:
            if final == "A":
                row = max(0, row - (n or 1))
            elif final == "B":
                row += n or 1
            elif final == "C":
                col = min(width - 1, col + (n or 1))
            elif final == "D":
                col = max(0, col - (n or 1))
            elif final == "G":
                col = (n or 1) - 1
            elif final == "K":
                line = cell(row)
                if n in (None, 0):
                    del line[col:]
                elif n == 1:
                    line[:col + 1] = [" "] * min(len(line), col + 1)
                else:
                    line.clear()
            elif final == "J" and n in (None, 0):
                del cell(row)[col:]
                del lines[row + 1:]
            continue  # colours, cursor visibility ...
        if tok.startswith("\x1b"):
            continue
        if tok == "\r":
            col = 0
        elif tok == "\n":
            row += 1
            cell(row)
        elif tok == "\b":
            col = max(0, col - 1)
        else:
            if col >= width:
                row, col = row + 1, 0
            line = cell(row)
            line.extend(" " * (col - len(line) + 1) if len(line) <= col else "")
            line[col] = tok
            col += 1
    return ["".join(line).rstrip() for line in lines]


def test_the_emulator_applies_erases_and_cursor_moves():
    assert screen_of("abc\rX\n") == ["Xbc", ""]
    assert screen_of("one\r\ntwo\r\nbar\r\x1b[2K\x1b[1A\x1b[2Kthree\r\n") == ["one", "three", ""]
    assert screen_of("one\r\ntwo\x1b[1A\r\x1b[2K") == ["", "two"]


def run_in_terminal(args: list[str], timeout: float = 60.0) -> tuple[int, str]:
    """Run ``python args`` with stdin, stdout and stderr on a new pseudo-terminal; (exit code, output)."""
    import pty

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "TERM")}
    env.update(TERM="xterm-256color", PYTHONPATH=str(ROOT), EDGEKIT_MAX_MEMORY="0")
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin/stdout/stderr are the terminal
        try:
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, *args], env)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", HEIGHT, WIDTH, 0, 0))
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        else:
            os.kill(pid, 9)
            pytest.fail("the command did not end under the terminal: " + b"".join(chunks).decode(errors="replace"))
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


PROBE = """
import time, click
from edgekit.cli.main import cli, main
from edgekit.cli.common import progress_printer, table
from edgekit.errors import GateFailed
from edgekit.progress import counted

@cli.command("probe")
def probe():
    say = progress_printer(False)
    say("warning: prune emptied channels: conv3 9/64")  # text: a line, never a bar
    for e in range(1, 4):
        say(counted("epoch", e, 8, f"epoch {e}/8  loss 0.{9 - e}"))  # left unfinished
        time.sleep(0.15)
    say(counted("export", 1, 3, "tflite: exporting (target 1/3)"))
    time.sleep(0.3)
    rows = [{"check": c, "target": "tflite-int8", "result": r} for c, r in
            (("size", "FAIL"), ("latency_p50", "PASS"), ("accuracy_drop", "PASS"), ("agreement", "PASS"))]
    click.echo(table(rows))
    raise GateFailed("1 of 4 gates failed: tflite-int8 size")

import sys
sys.argv = ["edgekit", "probe"]
main()
"""


def test_a_table_printed_after_progress_stays_on_screen():
    code, out = run_in_terminal(["-c", PROBE])
    screen = screen_of(out)
    text = "\n".join(screen)
    assert code == 1, text
    assert "\x1b[" in out  # a live display was drawn
    for check in ("size", "latency_p50", "accuracy_drop", "agreement"):
        assert any(line.split()[:2] == [check, "tflite-int8"] for line in screen), text
    assert "Error: 1 of 4 gates failed: tflite-int8 size" in text
    assert "warning: prune emptied channels: conv3 9/64" in text and "epoch 3/8  loss 0.6" in text
    assert "━" not in text and "9/64 " not in text.replace("conv3 9/64\n", "")  # no bar left, none for text
    assert not any(line.lstrip().startswith("epoch ━") for line in screen)


def test_gate_table_rows_are_on_the_final_screen(tmp_path):
    manifest = make_run(tmp_path / "run")
    code, out = run_in_terminal(["-m", "edgekit", "gate", str(manifest), "--target", "tflite-int8",
                                 "--max-size", "35KiB", "--max-latency-ms", "0.05", "--max-accuracy-drop", "0.5",
                                 "--min-agreement", "99"])
    screen = screen_of(out)
    text = "\n".join(screen)
    assert code == 1, text
    rows = [line.split() for line in screen if "tflite-int8" in line and not line.startswith("Error")]
    assert [r[0] for r in rows] == ["size", "latency_p50", "accuracy_drop", "agreement"], text
    assert "FAIL" in rows[0] and all("PASS" in r for r in rows[1:]), text
    assert all(len(line) <= WIDTH for line in screen)
    assert screen[-2 if not screen[-1] else -1].startswith("Error: 1 of 4 gates failed"), text


LOGS = """
import logging, os, sys, warnings
os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
from edgekit.cli.supervise import route_logs
route_logs(sys.argv[1] == "verbose")
logging.warning("tfmot note")                      # tfmot logs on the root logger
logging.getLogger("absl").warning("absl note")
logging.getLogger("tensorflow").warning("5 out of the last 5 calls triggered tf.function retracing")
warnings.warn("a deprecation note")
logging.getLogger("tensorflow").error("a real error")
print("TF_CPP_MIN_LOG_LEVEL=" + os.environ.get("TF_CPP_MIN_LOG_LEVEL", "unset"))
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_third_party_logs_are_hidden_unless_verbose(verbose):
    import subprocess

    from edgekit.cli.supervise import root_options

    assert root_options(["--verbose", "-q", "gate", "x"]) == ({"--verbose": ""}, "gate")
    r = subprocess.run([sys.executable, "-c", LOGS, "verbose" if verbose else "quiet"], capture_output=True,
                       text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    notes = ("tfmot note", "absl note", "retracing", "a deprecation note")
    if verbose:
        assert all(n in r.stderr for n in notes) and "TF_CPP_MIN_LOG_LEVEL=0" in r.stdout
    else:
        assert not any(n in r.stderr for n in notes) and "WARNING:root" not in r.stderr
        assert r.stderr.strip() == "ERROR: tensorflow: a real error" and "TF_CPP_MIN_LOG_LEVEL=3" in r.stdout
