"""The child-process load-and-run check of an untrusted model file.

    python -m edgekit.runtimes.probe RUNTIME PATH

loads ``PATH`` with the runtime's own load code and runs it once on zeros, then prints
``ok``. :func:`probe_in_subprocess` runs that in a child process (an argument list and a
timeout), so a file that crashes a native interpreter ends the child, not the caller; the
runtime's error (the last line the child printed) comes back as one InputError line.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from edgekit.errors import InputError
from edgekit.runtimes.child_env import child_env

TIMEOUT_S = 120


def probe_command(runtime: str, path: str | Path) -> list[str]:
    """The child's argument list."""
    return [sys.executable, "-m", "edgekit.runtimes.probe", runtime, str(path)]


def probe_in_subprocess(path: str | Path, runtime: str, timeout_s: int = TIMEOUT_S) -> None:
    """Load and run ``path`` once in a child process; InputError when that fails or crashes."""
    try:
        proc = subprocess.run(probe_command(runtime, path), capture_output=True, text=True, errors="replace",
                              timeout=timeout_s, env=child_env())  # errors=: runtimes echo raw names
    except subprocess.TimeoutExpired:
        raise InputError(f"Loading {str(path)!r} on {runtime} did not finish within {timeout_s}s.") from None
    if proc.returncode == 0 and proc.stdout.strip().endswith("ok"):
        return
    if proc.returncode < 0:
        raise InputError(f"{str(path)!r} crashes the {runtime} runtime (signal {-proc.returncode}); "
                         "the file is damaged or not a model for it.")
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    # "onnxruntime.capi.onnxruntime_pybind11_state.Fail: ..." -> "Fail: ..."
    last = re.sub(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*: )", "", lines[-1].strip())[:200] if lines \
        else f"exit code {proc.returncode}"
    raise InputError(f"{str(path)!r} cannot be run on {runtime}: {last}")


def main(argv: list[str]) -> int:
    """The child: load and run once; a failure ends it with the runtime's own traceback."""
    from edgekit.runtimes import get_runtime

    if len(argv) != 2:
        print("usage: python -m edgekit.runtimes.probe RUNTIME PATH", file=sys.stderr)
        return 2
    runtime = get_runtime(argv[0])
    if runtime.run_once is None:
        print(f"UsageError: runtime {runtime.name!r} has no native load to probe", file=sys.stderr)
        return 2
    runtime.run_once(Path(argv[1]))
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
