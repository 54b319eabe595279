"""Paths inside a recipe file are relative to the recipe's folder, not the working directory.

``load_recipe`` makes them absolute before the recipe is parsed: ``data.spec`` of a path source
(``idx:DIR``, ``npz:FILE``, ``images:DIR[,options]``), ``model.path``, ``train.teacher``,
``train.pretrained`` (unless ``imagenet``) and ``gates.baseline``. Values given with ``--set`` are typed on the command line, so they are taken
from the working directory, like every other command-line path (``--out`` included).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from edgekit.data.sources import absolute_spec, spec_path
from edgekit.errors import InputError

PATH_KEYS = (("model", "path"), ("train", "teacher"), ("train", "pretrained"), ("gates", "baseline"))  # besides data.spec
NOT_PATHS = {("train", "pretrained"): "imagenet"}  # a name, not a file


def resolve_paths(data: Mapping[str, Any], base: str | os.PathLike) -> dict[str, Any]:
    """A copy of the recipe mapping ``data`` with its relative input paths taken from ``base``.
    Values of the wrong type are left for the schema to report."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    section = out.get("data")
    if isinstance(section, dict) and isinstance(section.get("spec"), str) and section["spec"].strip():
        section["spec"] = absolute_spec(section["spec"], base)
    for name, key in PATH_KEYS:
        section = out.get(name)
        if isinstance(section, dict) and isinstance(section.get(key), str) and section[key].strip() \
                and section[key] != NOT_PATHS.get((name, key)):
            section[key] = os.path.normpath(os.path.join(os.fspath(base), os.path.expanduser(section[key])))
    return out


def input_paths(recipe: Any) -> list[tuple[str, str]]:
    """``(recipe key, path)`` of every file or folder the recipe reads."""
    out = []
    path = spec_path(recipe.data.spec)
    if path is not None:
        out.append(("data.spec", path))
    if recipe.model.path:
        out.append(("model.path", recipe.model.path))
    if recipe.train is not None and getattr(recipe.train, "teacher", None):
        out.append(("train.teacher", recipe.train.teacher))
    if recipe.train is not None and getattr(recipe.train, "pretrained", None) not in (None, "imagenet"):
        out.append(("train.pretrained", recipe.train.pretrained))
    if recipe.gates is not None and recipe.gates.baseline:
        out.append(("gates.baseline", recipe.gates.baseline))
    return out


def check_inputs(recipe: Any, name: str) -> None:
    """InputError (one line) naming every input path of ``recipe`` (the file ``name``) that does not exist."""
    missing = [f"{key} {os.path.abspath(p)} does not exist" for key, p in input_paths(recipe) if not Path(p).exists()]
    if missing:
        folder = os.path.dirname(os.path.abspath(name))
        raise InputError(f"Recipe {name!r}: {'; '.join(missing)} (relative paths in a recipe are taken from its "
                         f"folder, {folder}). Fix the path in the recipe, or give it with --set.")


__all__ = ["resolve_paths", "input_paths", "check_inputs", "PATH_KEYS"]
