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

A device and its URI are not trusted: a user, host, serial or python that could pass for an
option (``-oProxyCommand=...``), or holds whitespace or control characters, is refused before
anything runs, and ``--`` ends the options of ssh and of adb shell. Each command runs in a
session of its own: at its timeout (or Ctrl-C) its whole process group is killed, grandchildren
included. Its stdout is capped (:data:`MAX_STDOUT`; the command is killed beyond it) and only
:data:`MAX_STDERR` bytes of its stderr are kept.
"""
from __future__ import annotations

import dataclasses
import os
import re
import selectors
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, unquote, urlsplit

from edgekit.devices.errortext import clean, last_line, shorten
from edgekit.errors import InputError, UsageError
from edgekit.interrupt import interruptible
from edgekit.registry import Registry

SSH, ADB, EXEC = "ssh", "adb", "exec"
SCHEMES = (SSH, ADB, EXEC)
MIN_PYTHON = (3, 8)
DEFAULT_TIMEOUT_S = 60.0
MAX_STDOUT = 64 << 20  # bytes of a command's stdout: the runner's reply (outputs of the holdout) fits
MAX_STDERR = 64 << 10  # bytes of a command's stderr kept (its first and last 32 KiB)
SMALL_REPLY = 64 << 10  # stdout of the helper commands (version, mkdtemp, copy, cleanup)
MODEL_RUN = "the model run"
_LARGE_HINT = " (or, if its outputs are that large, validate on fewer images)"
_CHUNK = 64 << 10

_MKDTEMP = "import tempfile; print(tempfile.mkdtemp(prefix='edgekit-'))"
_WRITE = ("import shutil, sys\nwith open(sys.argv[1], 'wb') as f:\n    shutil.copyfileobj(sys.stdin.buffer, f)\n"
          "print('written')")
_RMTREE = "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)"
_VERSION = "import sys; print('%d.%d.%d' % tuple(sys.version_info[:3]))"


@dataclasses.dataclass(frozen=True)
class Completed:
    """What one command on the device returned (``stderr``: at most :data:`MAX_STDERR` bytes kept)."""

    returncode: int
    stdout: bytes
    stderr: bytes

    def last_error_line(self) -> str:
        return last_line(self.stderr.decode("utf-8", "replace"), f"exit code {self.returncode}")


class _Stopped(Exception):
    """The command was stopped: it outlived its timeout or wrote more than its cap."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


class _HeadTail:
    """The first and the last ``limit // 2`` bytes of a stream, and how many were left out."""

    def __init__(self, limit: int):
        self.half, self.head, self.tail, self.dropped = max(limit // 2, 1), bytearray(), bytearray(), 0

    def add(self, chunk: bytes) -> None:
        room = self.half - len(self.head)
        self.head += chunk[:max(room, 0)]
        self.tail += chunk[max(room, 0):]
        if len(self.tail) > self.half:
            self.dropped += len(self.tail) - self.half
            del self.tail[:len(self.tail) - self.half]

    def value(self) -> bytes:
        gap = f"\n[... {self.dropped:,} bytes left out ...]\n".encode() if self.dropped else b""
        return bytes(self.head) + gap + bytes(self.tail)


def _feed(pipe: IO[bytes], data: bytes) -> None:
    """Write ``data`` to the child's stdin and close it; a child that stopped reading is not an error."""
    try:
        for i in range(0, len(data), _CHUNK):
            pipe.write(data[i:i + _CHUNK])
    except (BrokenPipeError, OSError, ValueError):
        pass
    finally:
        try:
            pipe.close()
        except (BrokenPipeError, OSError):
            pass


def _collect(proc: subprocess.Popen, deadline: float, max_stdout: int) -> tuple[bytes, bytes]:
    """Read the child's stdout (at most ``max_stdout`` bytes) and stderr (:class:`_HeadTail`) until both end
    and it exits; :class:`_Stopped` at ``deadline`` or over the cap."""
    out, err = bytearray(), _HeadTail(MAX_STDERR)
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        sel.register(proc.stderr, selectors.EVENT_READ)  # type: ignore[arg-type]
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Stopped("timeout")
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, _CHUNK)
                if not chunk:
                    sel.unregister(key.fileobj)
                elif key.fileobj is proc.stdout:
                    out += chunk
                    if len(out) > max_stdout:
                        raise _Stopped("too large")
                else:
                    err.add(chunk)
    try:
        proc.wait(max(deadline - time.monotonic(), 0.0))
    except subprocess.TimeoutExpired:
        raise _Stopped("timeout") from None
    return bytes(out), err.value()


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the child's whole process group (it leads a session of its own), grandchildren included."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.kill()


def run_capped(argv: list[str], stdin: bytes, timeout_s: float, max_stdout: int) -> Completed:
    """Run ``argv`` in a new session with ``stdin`` streamed in; stdout is capped at ``max_stdout``
    bytes, stderr at :data:`MAX_STDERR` kept. :class:`_Stopped` (its process group killed) at the
    timeout or over the cap; the group is killed too when this is interrupted (Ctrl-C)."""
    with interruptible():  # its own session does not see the terminal's Ctrl-C: this process stops it
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        feeder = threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True)
        try:
            feeder.start()
            out, err = _collect(proc, time.monotonic() + timeout_s, max_stdout)
        except BaseException:
            kill_group(proc)
            raise
        finally:
            for pipe in (proc.stdout, proc.stderr):
                pipe.close()  # type: ignore[union-attr]
            proc.wait()
            feeder.join(5.0)
    return Completed(proc.returncode, out, err)


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
                   what: str = "a command", max_stdout: int = MAX_STDOUT) -> Completed:
        """Run the device's Python; stdin is streamed in, stdout/stderr collected. InputError when
        the transport cannot start, the command outlives ``timeout_s`` or writes more than
        ``max_stdout`` bytes (it is killed, with every process it started)."""
        argv = self.argv(python_args)
        try:
            return run_capped(argv, stdin, timeout_s, max_stdout)
        except FileNotFoundError:
            raise InputError(f"Device {self.uri}: cannot start {argv[0]!r} (not found); install it or fix the URI.") \
                from None
        except PermissionError:
            raise InputError(f"Device {self.uri}: {argv[0]!r} is not executable.") from None
        except _Stopped as e:
            if e.why == "timeout":
                raise InputError(f"Device {self.uri}: {what} did not finish within {timeout_s:g}s and was stopped; "
                                 "the device hangs or is too slow (raise the timeout).") from None
            raise InputError(f"Device {self.uri}: the reply to {what} was larger than {max_stdout:,} bytes and was "
                             "stopped there; the device does not answer as edgekit's runner does"
                             f"{_LARGE_HINT if what == MODEL_RUN else ''}.") from None

    def check(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[int, ...]:
        """The device's Python version; InputError when unreachable or older than 3.8."""
        r = self.run_python(["-c", _VERSION], timeout_s=timeout_s, what="the reachability check",
                            max_stdout=SMALL_REPLY)
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
        r = self.run_python(["-c", _MKDTEMP], timeout_s=timeout_s, what="creating a temporary folder",
                            max_stdout=SMALL_REPLY)
        path = r.stdout.decode("utf-8", "replace").strip().splitlines()
        if r.returncode != 0 or not path:
            raise InputError(f"Device {self.uri}: cannot create a temporary folder: {r.last_error_line()}.")
        name = path[-1].rstrip("/").rsplit("/", 1)[-1]
        if not name.startswith("edgekit-") or len(path[-1]) > 4096 or not path[-1].isprintable():
            seen = shorten(clean(path[-1]), 80)
            raise InputError(f"Device {self.uri}: creating a temporary folder answered {seen!r}, not a folder named "
                             "edgekit-*; the device's Python is not a plain Python.")
        return path[-1]

    def push(self, local: str | Path, remote_dir: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
        """Copy ``local`` into ``remote_dir`` on the device; the device-side path."""
        src = Path(local)
        dest = f"{remote_dir.rstrip('/')}/{src.name}"
        r = self.run_python(["-c", _WRITE, dest], stdin=src.read_bytes(), timeout_s=timeout_s,
                            what=f"copying {src.name}", max_stdout=SMALL_REPLY)
        if r.returncode != 0 or b"written" not in r.stdout:
            raise InputError(f"Device {self.uri}: cannot copy {src.name} to {remote_dir}: {r.last_error_line()}.")
        return dest

    def cleanup(self, remote_dir: str, timeout_s: float = 30.0) -> bool:
        """Remove ``remote_dir`` on the device; False (no error) when that fails: cleanup is best effort."""
        try:
            return self.run_python(["-c", _RMTREE, remote_dir], timeout_s=timeout_s,
                                   max_stdout=SMALL_REPLY).returncode == 0
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
    """``ssh -o BatchMode=yes ... -p PORT -- user@host 'python3 ...'``: keys only, a connect timeout,
    and ``--`` before the destination, so nothing from the URI can be read as an ssh option."""

    scheme = SSH

    def __init__(self, uri: str, host: str, port: int | None = None, python: str = "python3",
                 connect_timeout_s: int = 10):
        super().__init__(uri, python)
        self.host, self.port, self.connect_timeout_s = host, port, connect_timeout_s

    def argv(self, python_args: list[str]) -> list[str]:
        port = ["-p", str(self.port)] if self.port else []
        return ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout_s}", *port, "--",
                self.host, shlex.join([self.python, *python_args])]


@TRANSPORTS.register(ADB)
class AdbDevice(Device):
    """``adb -s SERIAL shell -- 'python3 ...'`` (an Android device with a Python, e.g. Termux); ``--``
    ends adb shell's own options."""

    scheme = ADB

    def __init__(self, uri: str, serial: str, python: str = "python3"):
        super().__init__(uri, python)
        self.serial = serial

    def argv(self, python_args: list[str]) -> list[str]:
        return ["adb", "-s", self.serial, "shell", "--", shlex.join([self.python, *python_args])]


_HOST = re.compile(r"[A-Za-z0-9._:-]+")  # host names, IPv4 and (unbracketed) IPv6 addresses
_QUERY_KEYS = ("python",)


def _unsafe(value: str) -> str | None:
    """Why ``value`` cannot go on a command line as one argument (None when it can)."""
    if value.startswith("-"):
        return "starts with '-' (it would be read as an option)"
    if any(c.isspace() or not c.isprintable() for c in value):
        return "contains whitespace or control characters"
    return None


def _checked(uri: str, what: str, value: str, allow_space: bool = False) -> str:
    """``value`` (one part of ``uri``) when it is safe as one argument; UsageError naming the part otherwise."""
    why = _unsafe(value.replace(" ", "_") if allow_space else value)
    if not value:
        why = "is empty"
    if why:
        raise UsageError(f"Device URI {uri!r}: the {what} {value!r} {why}. Give a plain {what}, e.g. "
                         f"{_EXAMPLES[what]}.")
    return value


_EXAMPLES = {"user": "ssh://pi@raspberrypi", "host": "ssh://pi@raspberrypi or ssh://pi@192.168.1.20:2222",
             "serial": "adb://emulator-5554 or adb://192.168.1.20:5555", "python": "?python=/usr/bin/python3"}


def _python_of(uri: str, query: str) -> str:
    """The ``?python=`` of ``uri`` (default ``python3``); UsageError for other keys or an unsafe value."""
    try:
        pairs = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query), max_num_fields=8)
    except ValueError:
        raise UsageError(f"Device URI {uri!r}: the query {query!r} does not parse; expected ?python=PATH.") from None
    extra = sorted(set(pairs) - set(_QUERY_KEYS))
    if extra or any(len(v) > 1 for v in pairs.values()):
        raise UsageError(f"Device URI {uri!r}: unknown or repeated query key {(extra or ['python'])[0]!r}; the only "
                         "one is python=PATH (the device's Python).")
    return _checked(uri, "python", pairs.get("python", ["python3"])[0], allow_space=True)


def _refuse_raw(uri: str) -> None:
    if any(c.isspace() or not c.isprintable() for c in uri):
        raise UsageError(f"Device URI {uri!r} contains whitespace or control characters; remove them.")


def _split_ssh(uri: str) -> tuple[str, str, int | None, str]:
    """``(user, host, port, query)`` of an ssh:// URI; UsageError for anything malformed."""
    _refuse_raw(uri)
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as e:
        why = "the port is not a number from 1 to 65535" if "port" in str(e).lower() else str(e)
        raise UsageError(f"Device URI {uri!r} does not parse: {why}. Expected ssh://user@host[:port].") from None
    if parts.path not in ("", "/") or parts.fragment:
        raise UsageError(f"Device URI {uri!r}: unexpected path {parts.path + parts.fragment!r}; expected "
                         "ssh://user@host[:port][?python=PATH].")
    if parts.password is not None:
        raise UsageError(f"Device URI {uri!r} carries a password; edgekit logs in with keys only "
                         "(ssh-copy-id user@host), so remove it.")
    if port == 0:
        raise UsageError(f"Device URI {uri!r} does not parse: the port is not a number from 1 to 65535. Expected "
                         "ssh://user@host[:port].")
    return unquote(parts.username or ""), unquote(parts.hostname or ""), port, parts.query


def _ssh(uri: str) -> SshDevice:
    user, host, port, query = _split_ssh(uri)
    python = _python_of(uri, query)
    if not host:
        raise UsageError(f"Device URI {uri!r} names no host. Expected ssh://user@host[:port].")
    _checked(uri, "host", host)
    if not _HOST.fullmatch(host):
        raise UsageError(f"Device URI {uri!r}: the host {host!r} is not a host name or IP address. Give a plain "
                         f"host, e.g. {_EXAMPLES['host']}.")
    dest = f"{_checked(uri, 'user', user)}@{host}" if user else host
    return SshDevice(uri, dest, port, python)


def _adb(uri: str, rest: str) -> AdbDevice:
    _refuse_raw(uri)
    target, _, query = rest.partition("?")
    serial = unquote(target.rstrip("/"))
    return AdbDevice(uri, _checked(uri, "serial", serial), _python_of(uri, query))


def check_uri(uri: str) -> None:
    """UsageError (one line) when ``uri`` is not a valid device URI: instant, nothing is run."""
    open_device(uri)


def open_device(uri: str) -> Device:
    """The :class:`Device` for ``uri`` (``ssh://``, ``adb://``, ``exec://``); UsageError when malformed
    or when a user, host, serial or python could be read as an option by ssh/adb."""
    if not isinstance(uri, str):
        raise UsageError(f"A device URI is a string such as ssh://pi@raspberrypi. Received: {uri!r}.")
    scheme, sep, rest = uri.partition("://")
    if not sep or not rest.strip():
        raise UsageError(f"Device URI {uri!r} is not SCHEME://TARGET. Expected ssh://user@host[:port], "
                         "adb://SERIAL or exec://<python command>.")
    cls = TRANSPORTS.get(scheme)
    if cls is ExecDevice:
        if not all(c.isprintable() for c in rest):
            raise UsageError(f"Device URI {uri!r} contains control characters; remove them.")
        try:
            prefix = shlex.split(rest)
        except ValueError as e:
            raise UsageError(f"Device URI {uri!r}: the command does not parse ({e}).") from None
        return ExecDevice(uri, prefix)
    return _ssh(uri) if cls is SshDevice else _adb(uri, rest)
