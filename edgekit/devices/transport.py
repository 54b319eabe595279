"""Device transports: reach a machine, copy a file to a temporary folder there, run its Python.

A device is named by a URI; the scheme picks the transport from :data:`TRANSPORTS`:

- ``ssh://user@host[:port][?python=/usr/bin/python3]``: the ``ssh`` client, key-based
  (``BatchMode=yes``: a password prompt fails fast instead of hanging);
- ``adb://SERIAL[?python=python3]``: ``adb -s SERIAL shell`` (a Python on the device, e.g. Termux);
- ``exec://<command prefix>``: a local command that *is* a Python interpreter, e.g.
  ``exec:///usr/bin/python3`` or ``exec://docker exec -i box python3``.

Every transport runs the device's Python only, so the rest is built on it: a temporary
folder (``tempfile.mkdtemp`` there), a copy (bytes through stdin into a file there), cleanup
(``shutil.rmtree`` there). Child processes take argument lists and timeouts; a failure is an
:class:`~edgekit.errors.InputError` of one line naming the device.
"""
from __future__ import annotations

import dataclasses
import re
import shlex
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from edgekit.errors import InputError, UsageError
from edgekit.registry import Registry

SSH, ADB, EXEC = "ssh", "adb", "exec"
SCHEMES = (SSH, ADB, EXEC)
MIN_PYTHON = (3, 8)
DEFAULT_TIMEOUT_S = 60.0

_MKDTEMP = "import tempfile; print(tempfile.mkdtemp(prefix='edgekit-'))"
_WRITE = ("import shutil, sys\nwith open(sys.argv[1], 'wb') as f:\n    shutil.copyfileobj(sys.stdin.buffer, f)\n"
          "print('written')")
_RMTREE = "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)"
_VERSION = "import sys; print('%d.%d.%d' % tuple(sys.version_info[:3]))"


@dataclasses.dataclass(frozen=True)
class Completed:
    """What one command on the device returned."""

    returncode: int
    stdout: bytes
    stderr: bytes

    def last_error_line(self) -> str:
        lines = [ln.strip() for ln in self.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        return lines[-1][:200] if lines else f"exit code {self.returncode}"


class Device:
    """A machine reached through one transport; subclasses say how to run its Python."""

    scheme = ""

    def __init__(self, uri: str, python: str = "python3"):
        self.uri = uri
        self.python = python

    def argv(self, python_args: list[str]) -> list[str]:
        """The local command line that runs the device's Python with ``python_args``."""
        raise NotImplementedError

    def run_python(self, python_args: list[str], stdin: bytes = b"", timeout_s: float = DEFAULT_TIMEOUT_S,
                   what: str = "a command") -> Completed:
        """Run the device's Python; stdin is streamed in, stdout/stderr collected. InputError when
        the transport cannot start or the command outlives ``timeout_s`` (it is killed)."""
        argv = self.argv(python_args)
        try:
            proc = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout_s, check=False)
        except FileNotFoundError:
            raise InputError(f"Device {self.uri}: cannot start {argv[0]!r} (not found); install it or fix the URI.") \
                from None
        except PermissionError:
            raise InputError(f"Device {self.uri}: {argv[0]!r} is not executable.") from None
        except subprocess.TimeoutExpired:
            raise InputError(f"Device {self.uri}: {what} did not finish within {timeout_s:g}s and was stopped; "
                             "the device hangs or is too slow (raise the timeout).") from None
        return Completed(proc.returncode, proc.stdout, proc.stderr)

    def check(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[int, ...]:
        """The device's Python version; InputError when unreachable or older than 3.8."""
        r = self.run_python(["-c", _VERSION], timeout_s=timeout_s, what="the reachability check")
        m = re.search(rb"^(\d+)\.(\d+)\.(\d+)\s*$", r.stdout.strip(), re.M)
        if r.returncode != 0 or not m:
            raise InputError(f"Device {self.uri} is not reachable or has no working {self.python!r}: "
                             f"{r.last_error_line()}.")
        version = tuple(int(v) for v in m.groups())
        if version[:2] < MIN_PYTHON:
            raise InputError(f"Device {self.uri}: Python {'.'.join(map(str, version))} is too old; the on-device "
                             f"runner needs Python >= {MIN_PYTHON[0]}.{MIN_PYTHON[1]}.")
        return version

    def make_temp_dir(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
        r = self.run_python(["-c", _MKDTEMP], timeout_s=timeout_s, what="creating a temporary folder")
        path = r.stdout.decode("utf-8", "replace").strip().splitlines()
        if r.returncode != 0 or not path:
            raise InputError(f"Device {self.uri}: cannot create a temporary folder: {r.last_error_line()}.")
        return path[-1]

    def push(self, local: str | Path, remote_dir: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
        """Copy ``local`` into ``remote_dir`` on the device; the device-side path."""
        src = Path(local)
        dest = f"{remote_dir.rstrip('/')}/{src.name}"
        r = self.run_python(["-c", _WRITE, dest], stdin=src.read_bytes(), timeout_s=timeout_s,
                            what=f"copying {src.name}")
        if r.returncode != 0 or b"written" not in r.stdout:
            raise InputError(f"Device {self.uri}: cannot copy {src.name} to {remote_dir}: {r.last_error_line()}.")
        return dest

    def cleanup(self, remote_dir: str, timeout_s: float = 30.0) -> bool:
        """Remove ``remote_dir`` on the device; False (no error) when that fails: cleanup is best effort."""
        try:
            return self.run_python(["-c", _RMTREE, remote_dir], timeout_s=timeout_s).returncode == 0
        except InputError:
            return False


TRANSPORTS: Registry[type[Device]] = Registry("device transport")


@TRANSPORTS.register(EXEC)
class ExecDevice(Device):
    """A local command that is a Python interpreter (another venv, a container, an emulator)."""

    scheme = EXEC

    def __init__(self, uri: str, prefix: list[str]):
        super().__init__(uri, prefix[0])
        self.prefix = prefix

    def argv(self, python_args: list[str]) -> list[str]:
        return [*self.prefix, *python_args]


@TRANSPORTS.register(SSH)
class SshDevice(Device):
    """``ssh user@host -p PORT -- python3 ...`` with keys only and a connect timeout."""

    scheme = SSH

    def __init__(self, uri: str, host: str, port: int | None = None, python: str = "python3",
                 connect_timeout_s: int = 10):
        super().__init__(uri, python)
        self.host, self.port, self.connect_timeout_s = host, port, connect_timeout_s

    def argv(self, python_args: list[str]) -> list[str]:
        port = ["-p", str(self.port)] if self.port else []
        return ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout_s}",
                *port, self.host, "--",
                shlex.join([self.python, *python_args])]


@TRANSPORTS.register(ADB)
class AdbDevice(Device):
    """``adb -s SERIAL shell python3 ...`` (an Android device with a Python, e.g. Termux)."""

    scheme = ADB

    def __init__(self, uri: str, serial: str, python: str = "python3"):
        super().__init__(uri, python)
        self.serial = serial

    def argv(self, python_args: list[str]) -> list[str]:
        return ["adb", "-s", self.serial, "shell", shlex.join([self.python, *python_args])]


def open_device(uri: str) -> Device:
    """The :class:`Device` for ``uri`` (``ssh://``, ``adb://``, ``exec://``); UsageError when malformed."""
    scheme, sep, rest = uri.partition("://")
    if not sep or not rest.strip():
        raise UsageError(f"Device URI {uri!r} is not SCHEME://TARGET. Expected ssh://user@host[:port], "
                         "adb://SERIAL or exec://<python command>.")
    cls = TRANSPORTS.get(scheme)
    if cls is ExecDevice:
        try:
            prefix = shlex.split(rest)
        except ValueError as e:
            raise UsageError(f"Device URI {uri!r}: the command does not parse ({e}).") from None
        return ExecDevice(uri, prefix)
    parts = urlsplit(uri)
    query = parse_qs(parts.query)
    python = query.get("python", ["python3"])[0]
    if cls is SshDevice:
        try:
            port = parts.port
        except ValueError:
            raise UsageError(f"Device URI {uri!r}: the port is not a number.") from None
        if not parts.hostname:
            raise UsageError(f"Device URI {uri!r} names no host. Expected ssh://user@host[:port].")
        host = f"{parts.username}@{parts.hostname}" if parts.username else parts.hostname
        return SshDevice(uri, host, port, python)
    return AdbDevice(uri, parts.netloc, python)
