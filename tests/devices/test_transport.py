"""Device URIs, the transports' command lines, and the exec/ssh transports on this machine."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys

import pytest

from edgekit.devices.transport import TRANSPORTS, AdbDevice, ExecDevice, SshDevice, open_device
from edgekit.errors import InputError, UsageError


def test_uris_resolve_to_transports():
    assert TRANSPORTS.names() == ["exec", "ssh", "adb"]
    ex = open_device("exec://docker exec -i box python3")
    assert isinstance(ex, ExecDevice) and ex.argv(["-c", "x"]) == ["docker", "exec", "-i", "box", "python3", "-c", "x"]
    assert open_device("exec:///usr/bin/python3").argv(["r.py"]) == ["/usr/bin/python3", "r.py"]
    ssh = open_device("ssh://pi@raspberrypi.local:2222?python=/opt/py/bin/python3")
    assert isinstance(ssh, SshDevice)
    assert ssh.argv(["-c", "print('a b')"]) == [
        "ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-p", "2222", "--", "pi@raspberrypi.local",
        "/opt/py/bin/python3 -c 'print('\"'\"'a b'\"'\"')'"]
    assert open_device("ssh://host").argv(["x.py"])[-3:] == ["--", "host", "python3 x.py"]
    adb = open_device("adb://emulator-5554")
    assert isinstance(adb, AdbDevice) and adb.argv(["r.py"]) == ["adb", "-s", "emulator-5554", "shell", "--",
                                                                    "python3 r.py"]


@pytest.mark.parametrize("uri, match", [
    ("raspberrypi", "is not SCHEME://TARGET"), ("exec://", "is not SCHEME://TARGET"),
    ("sssh://pi@host", "Unknown device transport 'sssh'.*Did you mean \"ssh\"?"),
    ("ssh://pi@host:port", "the port is not a number from 1 to 65535"), ("exec://python3 'unclosed", "does not parse"),
])
def test_bad_uris(uri, match):
    with pytest.raises(UsageError, match=match):
        open_device(uri)


def test_exec_transport_temp_folder_copy_and_cleanup(tmp_path):
    dev = open_device(f"exec://env TMPDIR={tmp_path} {sys.executable}")
    assert dev.check(30)[:2] == tuple(sys.version_info[:2])
    remote = dev.make_temp_dir()
    assert remote.startswith(str(tmp_path / "edgekit-"))
    src = tmp_path / "payload.bin"
    src.write_bytes(bytes(range(256)) * 40)
    dest = dev.push(src, remote)
    assert open(dest, "rb").read() == src.read_bytes()
    done = dev.run_python(["-c", "import sys; sys.stdout.write(sys.stdin.read()[::-1])"], stdin=b"abc")
    assert (done.returncode, done.stdout) == (0, b"cba")
    assert dev.cleanup(remote) and not list(tmp_path.glob("edgekit-*"))
    with pytest.raises(InputError, match="cannot copy payload.bin to /nonexistent/dir"):
        dev.push(src, "/nonexistent/dir")


def test_exec_device_that_is_not_python():
    with pytest.raises(InputError, match=r"^Device exec://false is not reachable or has no working 'false': "
                                         r"exit code 1\.$"):
        open_device("exec://false").check(10)


@pytest.mark.skipif(shutil.which("ssh") is None, reason="no ssh client on this machine")
def test_ssh_to_a_closed_port_is_one_line():
    with pytest.raises(InputError) as e:
        open_device("ssh://nobody@127.0.0.1:1").check(20)
    assert str(e.value).startswith("Device ssh://nobody@127.0.0.1:1 is not reachable or has no working 'python3': ")
    assert "\n" not in str(e.value)


def _sshd_on_localhost() -> str | None:
    if shutil.which("ssh") is None:
        return "no ssh client on this machine"
    try:
        socket.create_connection(("127.0.0.1", 22), timeout=1).close()
    except OSError:
        return "no sshd listening on localhost:22"
    probe = subprocess.run(["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "localhost", "true"],
                           capture_output=True, timeout=30)
    return None if probe.returncode == 0 else "sshd on localhost refuses key-based login (BatchMode)"


def test_ssh_localhost_round_trip(tmp_path):
    why = _sshd_on_localhost()
    if why:
        pytest.skip(why)
    dev = open_device(f"ssh://localhost?python={sys.executable}")
    assert dev.check(30)[:2] == tuple(sys.version_info[:2])
    remote = dev.make_temp_dir()
    src = tmp_path / "x.bin"
    src.write_bytes(b"edgekit")
    assert dev.run_python(["-c", "import sys; print(open(sys.argv[1]).read())", dev.push(src, remote)]).stdout \
        == b"edgekit\n"
    assert dev.cleanup(remote)
