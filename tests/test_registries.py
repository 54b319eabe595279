"""Every registered item of every registry is named by a test.

The registries are found in the source (every module-level ``NAME = Registry(...)``), so a new
registry is covered without editing this file. Each is filled the way the package fills it:
importing its module, then calling the ``load_*()`` function of that module or of a sibling module
in its package (when one takes no argument and returns the registry). An item counts as tested when some file under tests/
(other than this one) has a string literal that names it as a whole word, e.g. ``"onnx"`` or
``"--set model.name=mlp"``. Registering an item with no test fails here.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

from edgekit.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
# choice lists that play a registry's part: the compression techniques' options
CHOICES = {
    "edgekit.compress.config:QUANTIZE_MODES": "quantize mode",
    "edgekit.compress.config:PRUNE_SCHEDULES": "prune schedule",
    "edgekit.compress.config:CLUSTER_INITS": "cluster init",
}


def registry_names() -> list[str]:
    """``module:NAME`` of every module-level ``NAME = Registry(...)`` in edgekit/."""
    found = []
    for p in sorted((ROOT / "edgekit").rglob("*.py")):
        module = ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.parse(p.read_text()).body:
            value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
            if isinstance(value, ast.Call) and getattr(value.func, "id", None) == Registry.__name__:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                found += [f"{module}:{t.id}" for t in targets if isinstance(t, ast.Name)]
    return found


def loaders(module_name: str) -> list:
    """The module's package siblings (the module first) that define a ``load_*()`` function: a
    registry's loader may live apart from it (export/targets.py beside export/base.py)."""
    path = Path(importlib.import_module(module_name).__file__)
    names = [module_name] + [f"{module_name.rpartition('.')[0]}.{p.stem}" for p in sorted(path.parent.glob("*.py"))
                             if p != path and p.stem != "__init__" and "\ndef load_" in p.read_text()]
    return [importlib.import_module(n) for n in names]


def filled(where: str) -> Registry:
    """The registry at ``module:NAME`` after the argument-free ``load_*()`` that returns it ran (in its
    module or a sibling module)."""
    module_name, _, attr = where.partition(":")
    registry = getattr(importlib.import_module(module_name), attr)
    for module in loaders(module_name):
        for name, fn in vars(module).items():
            if name.startswith("load_") and inspect.isfunction(fn) and fn.__module__ == module.__name__ and not any(
                    p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                    for p in inspect.signature(fn).parameters.values()):
                if fn() is registry:
                    return registry
    return registry


def literals_in_tests() -> set[str]:
    """Every string literal in tests/, except in this file."""
    out: set[str] = set()
    for p in (ROOT / "tests").rglob("*.py"):
        if p.resolve() == Path(__file__).resolve():
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                out.add(node.value)
    return out


def untested(names: list[str], literals: set[str]) -> list[str]:
    def named(name: str) -> bool:
        word = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")
        return any(word.search(s) for s in literals)

    return [n for n in names if not named(n)]


REGISTRIES = registry_names()


def test_the_registries_are_found():
    expected = {"edgekit.models.zoo:MODELS", "edgekit.train.optimizers:OPTIMIZERS",
                "edgekit.train.schedules:SCHEDULES", "edgekit.export.base:TARGETS", "edgekit.data.sources:SOURCES",
                "edgekit.models.handle:MODEL_FORMATS", "edgekit.train.strategy:STRATEGIES", "edgekit.stages:STAGES"}
    assert expected <= set(REGISTRIES)


def test_the_name_matcher_takes_whole_words_only():
    literals = {"--set model.name=cnn-small", "tflite-int8"}
    assert untested(["cnn-small", "cnn", "tflite", "tflite-int8"], literals) == ["cnn", "tflite"]


@pytest.fixture(scope="module")
def literals() -> set[str]:
    return literals_in_tests()


@pytest.mark.parametrize("where", REGISTRIES)
def test_every_registered_item_is_named_by_a_test(where, literals):
    registry = filled(where)
    assert len(registry), f"{where} is empty after importing its module and running its load_*() function"
    missing = untested(registry.names(), literals)
    assert not missing, f"{registry.kind} {', '.join(missing)} ({where}) registered with no test naming it"


@pytest.mark.parametrize("where", sorted(CHOICES))
def test_every_compression_choice_is_named_by_a_test(where, literals):
    module_name, _, attr = where.partition(":")
    names = list(getattr(importlib.import_module(module_name), attr))
    missing = untested(names, literals)
    assert not missing, f"{CHOICES[where]} {', '.join(missing)} ({where}) has no test naming it"
