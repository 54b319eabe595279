"""Device URIs and device replies that a hostile user or device cannot abuse.

The devices are ``exec://`` URIs running a small local Python script (:data:`HOSTILE`) that is a
plain Python for every helper command (version, temp folder, copy, cleanup) and plays a hostile
runner for the model run: NaN or forged timings, a CPU class it names itself, a 100 MB reply, a
grandchild that outlives the timeout, 100 KB of error text. Each must end in one InputError or
UsageError line (exit 2) and leave nothing behind.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from edgekit.devices import transport
from edgekit.devices.reply import MIN_P50_US
from edgekit.devices.run import parse_reply, run_on_device
from edgekit.devices.runner_script import END, MAGIC, PROTOCOL
from edgekit.devices.transport import Completed, open_device
from edgekit.errors import InputError, UsageError

PY = sys.executable
X86_CPUINFO = ("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Core(TM) i7-4770 CPU @ 3.40GHz\n"
               "flags\t\t: fpu sse sse2 avx avx2 fma\n")
FACTS = {"system": "Linux", "release": "6.1.0", "platform": "Linux-6.1.0-x86_64", "processor": "x86_64",
         "python": "3.11.2", "implementation": "CPython", "executable": "/usr/bin/python3", "cpu_count": 4,
         "numpy": "1.26.4", "runtime": "ai_edge_litert", "runtime_version": "1.2.0"}

HOSTILE = r'''
import json, os, struct, subprocess, sys, time
args = sys.argv[1:]
if not args or not args[0].endswith("runner_script.py"):
    os.execv(sys.executable, [sys.executable] + args)  # a plain Python for the helper commands
mode = os.environ["HOSTILE_MODE"]
req = json.loads(sys.stdin.buffer.readline())
n, runs = req["count"], req["runs"]
out = sys.stdout.buffer
header = json.loads(os.environ["HOSTILE_HEADER"])
header["latencies_us"] = [50.0 + i % 7 for i in range(runs)]
header["outputs"] = {"shape": [n, 3], "nbytes": 12 * n}
payload = struct.pack("<%df" % (3 * n), *([1.0 / 3] * (3 * n)))
if mode == "nan":
    header["latencies_us"][runs // 2] = float("nan")
elif mode == "tiny":
    header["latencies_us"] = [0.001] * runs
elif mode == "claims-arm":
    header["facts"]["cpu"] = {"class": "arm-neon", "int8_expected_faster": True}
elif mode == "huge":
    chunk = b"x" * (1 << 20)
    for _ in range(100):  # 100 MB, never a protocol answer
        out.write(chunk)
    sys.exit(0)
elif mode == "grandchild":
    child = subprocess.Popen(["sleep", "300"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.environ["HOSTILE_PIDFILE"], "w") as f:
        f.write(str(child.pid))
    time.sleep(300)
elif mode == "long-error":
    text = "\n".join("line %d of the device's log: %s" % (i, "x" * 30) for i in range(2000))
    header = {"status": "error", "kind": "load", "message": "\x1b[31mmodel failed\x1b[0m\n" + text}
    payload = b""
out.write(("EDGEKIT-RUNNER/2 " + json.dumps(header) + "\n").encode() + payload + b"EDGEKIT-END\n")
'''


@pytest.fixture()
def artifact(tmp_path: Path) -> Path:
    """Any file: the hostile runner never reads it."""
    path = tmp_path / "m.tflite"
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 32)
    return path


@pytest.fixture()
def images() -> np.ndarray:
    return np.random.default_rng(0).random((4, 6, 6, 1), dtype=np.float32)


def _hostile(tmp_path: Path, mode: str, **env: str) -> str:
    script = tmp_path / "hostile_device.py"
    script.write_text(HOSTILE)
    (tmp_path / "dev-tmp").mkdir(exist_ok=True)
    header = json.dumps({"status": "ok", "facts": FACTS, "probe": {"machine": "x86_64", "cpuinfo": X86_CPUINFO}})
    extra = [f"{k}={v}" for k, v in env.items()]
    return "exec://" + " ".join(["env", f"TMPDIR={tmp_path / 'dev-tmp'}", f"HOSTILE_MODE={mode}",
                                 f"HOSTILE_HEADER={json.dumps(header)}", *extra, PY, str(script)])


def _one_line(uri: str, artifact: Path, images: np.ndarray, **kw) -> str:
    with pytest.raises(InputError) as e:
        run_on_device(uri, artifact, images, "litert", runs=5, warmup=0, **{"timeout_s": 30.0, **kw})
    msg = str(e.value)
    assert "\n" not in msg and "Traceback" not in msg and e.value.exit_code == 2
    assert msg.startswith(f"Device {uri}: ")
    return msg[len(f"Device {uri}: "):]


def test_the_hostile_script_as_an_honest_device_is_accepted(tmp_path, artifact, images):
    """The harness itself: its honest reply passes, and the CPU class comes from its probe data."""
    r = run_on_device(_hostile(tmp_path, "ok"), artifact, images, "litert", runs=5, warmup=0, timeout_s=30)
    assert r.outputs.shape == (4, 3) and np.allclose(r.outputs, 1 / 3)
    assert r.latencies_us == (50.0, 51.0, 52.0, 53.0, 54.0)
    assert r.facts["cpu"]["class"] == "x86-avx2" and r.facts["machine"] == "x86_64"
    assert r.facts["python"] == "3.11.2" and not list((tmp_path / "dev-tmp").glob("edgekit-*"))


# --- URIs ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("uri, part", [
    ("ssh://-oProxyCommand=touch%20%2Ftmp%2Fpwned@localhost",
     "the user '-oProxyCommand=touch /tmp/pwned' starts with '-'"),
    ("ssh://-oProxyCommand=x@localhost", "the user '-oProxyCommand=x' starts with '-' (it would be read as an option)"),
    ("ssh://%2DoProxyCommand=x@localhost", "the user '-oProxyCommand=x' starts with '-'"),
    ("ssh://-oProxyCommand=x", "the host '-oproxycommand=x' starts with '-'"),
    ("ssh://pi@-oProxyJump=evil", "the host '-oproxyjump=evil' starts with '-'"),
    ("ssh://pi@host?python=-oProxyCommand=x", "the python '-oProxyCommand=x' starts with '-'"),
    ("ssh://pi%09x@host", "the user 'pi\\tx' contains whitespace or control characters"),
    ("ssh://pi@host\n-oProxyCommand=x", "contains whitespace or control characters"),
    ("ssh://pi@ho$t", "the host 'ho$t' is not a host name or IP address"),
    ("ssh://pi:secret@host", "carries a password"),
    ("ssh://pi@host?pyhton=/usr/bin/python3", "unknown or repeated query key 'pyhton'"),
    ("adb://-e", "the serial '-e' starts with '-'"),
    ("adb://-sX%20shell", "the serial '-sX shell' starts with '-'"),
    ("adb://emulator 5554", "contains whitespace or control characters"),
    ("exec://python3\x00-c", "contains control characters"),
])
def test_option_like_or_unsafe_uris_are_refused_before_anything_runs(monkeypatch, uri, part):
    started: list[list[str]] = []
    monkeypatch.setattr(transport.subprocess, "Popen", lambda argv, *a, **k: started.append(argv))
    with pytest.raises(UsageError) as e:
        open_device(uri).check(5)
    assert part in str(e.value) and "\n" not in str(e.value) and e.value.exit_code == 2
    assert started == []


@pytest.mark.parametrize("uri, head, tail", [
    ("ssh://pi@host:2222?python=/opt/my%20py/python3",
     ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-p", "2222", "--"],
     ["pi@host", "'/opt/my py/python3' -c x"]),
    ("ssh://[fe80::1]", ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "--"], ["fe80::1", "python3 -c x"]),
    ("adb://192.168.1.20:5555", ["adb", "-s", "192.168.1.20:5555", "shell", "--"], ["python3 -c x"]),
])
def test_argv_has_no_option_from_the_uri(uri, head, tail):
    argv = open_device(uri).argv(["-c", "x"])
    assert argv == head + tail
    from_uri = argv[argv.index("--") + 1:] + [a for a in argv[:argv.index("--")] if a not in head]
    assert not any(a.startswith("-") for a in from_uri)


def test_an_unclosed_ipv6_host_is_refused_at_once_by_the_config_and_the_cli(monkeypatch, tmp_path):
    """The config refuses it, so the command fails before any dataset, model or file check."""
    from click.testing import CliRunner

    import edgekit.validate
    from edgekit.cli import export_cmds
    from edgekit.cli.main import cli
    from edgekit.validate import ValidateConfig
    from edgekit.validate import safety

    with pytest.raises(UsageError, match=r"^Device URI 'ssh://\[::1' does not parse: Invalid IPv6 URL\. Expected"):
        ValidateConfig(devices=["ssh://[::1"])
    model = tmp_path / "m.tflite"
    monkeypatch.setattr(edgekit.validate, "parse_artifacts", lambda a: {"tflite": model})
    monkeypatch.setattr(export_cmds, "load_checked_dataset", lambda *a, **k: pytest.fail("the dataset was loaded"))
    monkeypatch.setattr(safety, "check_file", lambda *a: pytest.fail("the artifact was checked"))
    r = CliRunner().invoke(cli, ["validate", str(model), "--device", "ssh://[::1", "--dataset", "digits",
                                 "--out", str(tmp_path / "v")])
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2 and lines == ["Error: Device URI 'ssh://[::1' does not parse: Invalid IPv6 URL. "
                                          "Expected ssh://user@host[:port]."], r.output
    assert not (tmp_path / "v" / "validation.json").exists()


# --- replies -------------------------------------------------------------------------------------

def test_nan_latencies_are_refused(tmp_path, artifact, images):
    msg = _one_line(_hostile(tmp_path, "nan"), artifact, images)
    assert msg.startswith("the runner's reply is not valid: field latencies_us[2] is nan; expected a finite number "
                          "of microseconds > 0")


def test_a_forged_p50_of_a_thousandth_of_a_microsecond_is_refused(tmp_path, artifact, images):
    msg = _one_line(_hostile(tmp_path, "tiny"), artifact, images)
    assert f"field latencies_us (p50) is 0.001; expected at least {MIN_P50_US} us" in msg


def test_a_cpu_class_the_device_names_itself_is_refused(tmp_path, artifact, images):
    msg = _one_line(_hostile(tmp_path, "claims-arm"), artifact, images)
    assert msg.startswith("the runner's reply is not valid: field facts.cpu is an object (2 fields); expected no "
                          "such field (the protocol has system, release,")


def _reply(header: dict, payload: bytes = b"", returncode: int = 0) -> Completed:
    line = (f"{MAGIC} " + json.dumps(header) + "\n").encode()
    return Completed(returncode, line + payload + END + b"\n", b"")


def _ok_header(**changes) -> dict:
    h = {"status": "ok", "facts": dict(FACTS), "probe": {"machine": "x86_64", "cpuinfo": X86_CPUINFO},
         "latencies_us": [40.0, 41.0, 42.0], "outputs": {"shape": [2, 3], "nbytes": 24}}
    h.update(changes)
    return h


REQUEST = {"protocol": PROTOCOL, "count": 2, "runs": 3}
PAYLOAD = np.full((2, 3), 0.5, "<f4").tobytes()


@pytest.mark.parametrize("changes, expected", [
    ({"latencies_us": [40.0, -5.0, 42.0]}, "field latencies_us[1] is -5.0; expected a finite number of "
                                           "microseconds > 0 and <= 1e+07"),
    ({"latencies_us": [40.0, 0, 42.0]}, "field latencies_us[1] is 0; expected a finite number"),
    ({"latencies_us": [40.0, math.inf, 42.0]}, "field latencies_us[1] is inf;"),
    ({"latencies_us": [40.0, True, 42.0]}, "field latencies_us[1] is True;"),
    ({"latencies_us": ["40", 41.0, 42.0]}, "field latencies_us[0] is '40';"),
    ({"latencies_us": [40.0, 41.0]}, "field latencies_us is a list of 2 items; expected a list of 3 timings"),
    ({"latencies_us": [9e6, 9e6, 9e6]}, "field latencies_us is '2.7e+07 us in all'; expected at most 1e+07 us"),
    ({"latencies_us": [0.1, 0.1, 50.0]}, "field latencies_us (p50) is 0.1; expected at least 0.2 us"),
    ({"outputs": {"shape": [2, 2 ** 31, 2 ** 31], "nbytes": 24}}, "field outputs.nbytes is 24; expected "
                                                                  "36893488147419103232 (float32 outputs"),
    ({"outputs": {"shape": [3, 2], "nbytes": 24}}, "field outputs.shape[0] is 3; expected 2 (one output per image"),
    ({"outputs": {"shape": [2, -3], "nbytes": 24}}, "field outputs.shape[1] is -3; expected a whole number from 1"),
    ({"probe": {"machine": "x86_64; rm -rf /", "cpuinfo": ""}}, "field probe.machine is 'x86_64; rm -rf /'"),
    ({"probe": {"machine": "x86_64", "cpuinfo": "x" * 9000}}, "field probe.cpuinfo is 'xxxx"),
    ({"facts": {**FACTS, "python": "3.11\x1b[2J"}}, "field facts.python is '3.11\\x1b[2J'; expected a string of"),
    ({"facts": {**FACTS, "cpu_count": 1.5}}, "field facts.cpu_count is 1.5; expected a whole number from 1"),
    ({"cpu_class": "arm-neon"}, "field cpu_class is 'arm-neon'; expected no such field"),
    ({"status": "fine"}, "field status is 'fine'; expected \"ok\" or \"error\""),
])
def test_reply_schema_names_the_field_and_value(changes, expected):
    with pytest.raises(InputError) as e:
        parse_reply("adb://X", _reply(_ok_header(**changes), PAYLOAD), REQUEST, timeout_s=10.0)
    msg = str(e.value)
    assert msg.startswith("Device adb://X: the runner's reply is not valid: ") and expected in msg, msg
    assert "\n" not in msg and len(msg) < 400


def test_the_host_derives_the_cpu_class_from_the_probe_data():
    """The probe says x86_64 with AVX2 flags: x86-avx2, whatever else the reply says about itself."""
    r = parse_reply("adb://X", _reply(_ok_header(), PAYLOAD), REQUEST, timeout_s=10.0)
    assert r.facts["cpu"]["class"] == "x86-avx2" and r.facts["cpu"]["arch"] == "x86_64"
    assert r.latencies_us == (40.0, 41.0, 42.0) and r.outputs.tolist() == [[0.5] * 3] * 2
    arm = _ok_header(probe={"machine": "aarch64", "cpuinfo": "processor : 0\nFeatures : fp asimd\n"})
    assert parse_reply("adb://X", _reply(arm, PAYLOAD), REQUEST, 10.0).facts["cpu"]["class"] == "arm-neon"


def test_a_header_nested_thousands_deep_is_damaged_not_a_crash():
    done = Completed(0, f"{MAGIC} ".encode() + b"[" * 100_000 + b"]" * 100_000 + b"\n", b"")
    with pytest.raises(InputError, match=r"the runner's answer header is damaged \(not JSON\)\.$"):
        parse_reply("adb://X", done, REQUEST, 10.0)


# --- size, processes, error text -------------------------------------------------------------------

def test_a_100_mb_reply_is_stopped_at_the_cap_with_bounded_memory(tmp_path, artifact, images):
    cap = 1 << 20
    uri = _hostile(tmp_path, "huge")
    tracemalloc.start()
    try:
        msg = _one_line(uri, artifact, images, max_reply_bytes=cap)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert msg.startswith("the reply to the model run was larger than 1,048,576 bytes and was stopped there; "
                          "the device does not answer as edgekit's runner does")
    assert peak < 8 * cap, peak  # the 100 MB never reach this process
    assert not list((tmp_path / "dev-tmp").glob("edgekit-*"))


def test_stderr_is_kept_to_its_first_and_last_bytes():
    done = transport.run_capped([PY, "-c", "import sys; sys.stderr.write('A' * 200000 + 'END')"], b"", 30.0, 1024)
    assert done.returncode == 0 and len(done.stderr) < transport.MAX_STDERR + 100
    assert done.stderr.startswith(b"AAAA") and done.stderr.endswith(b"AEND")
    assert b"[... 134,467 bytes left out ...]" in done.stderr


def _gone(pid: int) -> bool:
    """The process no longer runs (or is a zombie waiting for its new parent to reap it)."""
    for _ in range(200):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return True
        except (FileNotFoundError, IndexError):
            return True
        time.sleep(0.05)
    return False


def test_a_grandchild_does_not_outlive_the_timeout(tmp_path, artifact, images):
    pidfile = tmp_path / "grandchild.pid"
    uri = _hostile(tmp_path, "grandchild", HOSTILE_PIDFILE=str(pidfile))
    msg = _one_line(uri, artifact, images, timeout_s=3.0)
    assert msg == ("the model run did not finish within 3s and was stopped; the device hangs or is too slow "
                   "(raise the timeout).")
    pid = int(pidfile.read_text())
    assert _gone(pid), f"the device's grandchild {pid} still runs"


def test_a_cancelled_run_kills_the_grandchild_too(tmp_path, monkeypatch):
    """Ctrl-C while a device command runs: its session does not see the terminal's signal, so the
    host kills the whole group (the KeyboardInterrupt is raised here once the grandchild exists)."""
    pidfile = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time; c = subprocess.Popen(['sleep', '300']); "
            f"open({str(pidfile)!r}, 'w').write(str(c.pid)); time.sleep(300)")

    def cancelled(proc, deadline, max_stdout):
        for _ in range(600):
            if pidfile.exists() and pidfile.read_text():
                raise KeyboardInterrupt
            time.sleep(0.05)
        pytest.fail("the device command never started its grandchild")

    monkeypatch.setattr(transport, "_collect", cancelled)
    with pytest.raises(KeyboardInterrupt):
        transport.run_capped([PY, "-c", code], b"", 60.0, 1024)
    assert _gone(int(pidfile.read_text()))


def test_a_100_kb_error_text_is_one_line_and_saved_whole(tmp_path, artifact, images):
    logs = tmp_path / "logs"
    msg = _one_line(_hostile(tmp_path, "long-error"), artifact, images, log_dir=logs)
    log = next(logs.glob("edgekit-device-*.log"))
    text = log.read_text()
    assert len(text) > 100_000 and text.count("\n") == 2000 and text.startswith("\x1b[31mmodel failed")
    assert text.endswith("line 1999 of the device's log: " + "x" * 30)
    assert msg == (f"?[31mmodel failed?[0m ... line 1999 of the device's log: {'x' * 30} "
                   f"[{len(text):,} characters in 2,001 lines; full text: {log}] (load).")
    assert "\x1b" not in msg and len(msg) < 300 + len(str(log)) + 80


def test_a_short_error_text_is_shown_whole_without_a_log(tmp_path):
    from edgekit.devices.errortext import summarize

    assert summarize("Traceback (most recent call last):\n  File x\nValueError: bad\x07", tmp_path) == \
        "Traceback (most recent call last): / File x / ValueError: bad?"
    assert summarize("", tmp_path, "no error text") == "no error text" and not list(tmp_path.iterdir())
    long = summarize("E" * 1000, tmp_path)
    assert long.endswith(f"[1,000 characters in 1 line; full text: {next(tmp_path.iterdir())}]")


# --- standard JSON ---------------------------------------------------------------------------------

def test_write_json_writes_null_for_nan_and_inf(tmp_path):
    from edgekit.artifacts import write_json

    def refuse(name: str):
        raise ValueError(f"not standard JSON: {name}")

    path = write_json(tmp_path / "v.json", {"p50": float("nan"), "runs": [1.5, float("inf"), np.float32("nan")],
                                            "max": np.float64("-inf"), "arr": np.array([1.0, np.nan])})
    text = path.read_text()
    assert json.loads(text, parse_constant=refuse) == {"p50": None, "runs": [1.5, None, None], "max": None,
                                                       "arr": [1.0, None]}
