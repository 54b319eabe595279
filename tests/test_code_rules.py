"""Static rules for the package's code: no shell strings, every child process bounded in time,
no unsafe deserialisation (pickle, yaml.load, eval/exec)."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgekit"
SPAWN = {"run", "Popen", "call", "check_call", "check_output"}


def _calls():
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                yield path.relative_to(PACKAGE.parent), node


def _name(func: ast.AST) -> str:
    if isinstance(func, ast.Attribute):
        return f"{_name(func.value)}.{func.attr}"
    return func.id if isinstance(func, ast.Name) else "?"


def test_child_processes_use_argument_lists_and_timeouts():
    seen = 0
    for where, call in _calls():
        name = _name(call.func)
        if name in ("os.system", "os.popen", "os.spawnl", "os.execl"):
            raise AssertionError(f"{where}:{call.lineno}: {name} runs a shell string")
        if not (name.startswith("subprocess.") and name.split(".")[-1] in SPAWN):
            continue
        seen += 1
        kw = {k.arg: k.value for k in call.keywords}
        shell = kw.get("shell")
        assert shell is None or (isinstance(shell, ast.Constant) and shell.value is False), \
            f"{where}:{call.lineno}: shell=True"
        assert not (call.args and isinstance(call.args[0], (ast.Constant, ast.JoinedStr))), \
            f"{where}:{call.lineno}: the command is a string, not an argument list"
        if name.endswith("Popen") and str(where) == "edgekit/runtimes/base.py":
            continue  # ChildWorker: a long-lived worker, every reply read with a deadline
        if name.endswith("Popen") and str(where) == "edgekit/devices/transport.py":
            continue  # run_capped: output read with a deadline, the process group killed at it
        assert "timeout" in kw, f"{where}:{call.lineno}: {name} without a timeout"
    assert seen >= 2  # the validation probe and the Edge TPU compiler call are checked


def test_no_unsafe_deserialisation():
    for where, call in _calls():
        name = _name(call.func)
        assert name not in ("pickle.load", "pickle.loads", "marshal.loads", "eval", "exec", "yaml.load",
                            "yaml.unsafe_load"), f"{where}:{call.lineno}: {name}"
        if name in ("np.load", "numpy.load"):
            kw = {k.arg: k.value for k in call.keywords}
            assert isinstance(kw.get("allow_pickle"), ast.Constant) and kw["allow_pickle"].value is False, \
                f"{where}:{call.lineno}: np.load without allow_pickle=False"
        if name.endswith("load_model") and name.startswith(("k.models", "keras")):
            kw = {k.arg for k in call.keywords}
            assert "safe_mode" in kw or any(k.arg is None for k in call.keywords), \
                f"{where}:{call.lineno}: Keras load_model without safe_mode"
