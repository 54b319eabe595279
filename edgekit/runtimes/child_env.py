"""The environment of edgekit's child processes (probe, isolated runners, the arena-search worker)."""
from __future__ import annotations

import os
from pathlib import Path


def child_env() -> dict[str, str]:
    """This environment, with this process's edgekit first on a child process's import path (a
    source checkout or worktree; an installed edgekit is found as it is)."""
    import edgekit

    root = str(Path(edgekit.__file__).resolve().parents[1])
    env = dict(os.environ)
    if Path(root).name in ("site-packages", "dist-packages"):
        return env
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH", "")]))
    return env
