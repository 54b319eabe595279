"""The package's import graph has no cycles and follows its layers (AST, every import including
function-local ones).

Registration imports are the one allowed exception to the cycle rule: a registry's ``load_*()``
function imports its own plug-ins, which import the registry module back to register. Those edges
are listed in :data:`REGISTRATION_EDGES` explicitly, so a new cycle anywhere else fails this test.

:data:`LAYERS` orders the packages of the run-an-artifact chain, lowest first: a module may import
its own layer and the layers below it, never one above (formats -> runtimes -> export -> validate
-> stages/recipe -> cli). Packages not listed (models, data, train, compress ...) sit beside the
chain and are not ordered yet; the :data:`FOUNDATION` layers import nothing outside the layers.
"""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "edgekit"

# (registry module, plug-in module): the registry's load function imports the plug-in. None today: the
# loaders live apart from the registries their plug-ins import (export/targets.py, models/loading.py)
REGISTRATION_EDGES: set[tuple[str, str]] = set()

# lowest first; a name covers the module and everything under it
LAYERS: tuple[tuple[str, ...], ...] = (
    ("edgekit.errors", "edgekit.vocab", "edgekit.registry", "edgekit._lazy", "edgekit.interrupt",
     "edgekit.artifacts", "edgekit.locking", "edgekit.manifest", "edgekit.configs", "edgekit.progress"),
    ("edgekit.formats",),  # files read without running them (the .tflite flatbuffer)
    ("edgekit.runtimes",),
    ("edgekit.export",),
    ("edgekit.validate",),  # runs what export wrote; bench.py composes both
    ("edgekit.stages", "edgekit.recipe"),
    ("edgekit.cli", "edgekit.__main__"),
)
FOUNDATION = 2  # the first layers: their modules import only modules of these layers


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


def import_graph() -> dict[str, set[str]]:
    """module -> the edgekit modules it imports (a package's __init__ counts as the package)."""
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for m, p in mods.items():
        tree = ast.parse(p.read_text())
        pkgname = m if p.name == "__init__.py" else m.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkgname.split(".")[: len(pkgname.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                names = [f"{base}.{a.name}" for a in node.names] + [base]
            else:
                continue
            for n in names:
                r = resolve(n)
                if r is None or r == m or r == "edgekit" or m.startswith(r + "."):
                    continue
                deps.add(r)
        graph[m] = {d for d in deps if (m, d) not in REGISTRATION_EDGES}
    return graph


def layer_of(module: str) -> int | None:
    """Index of ``module``'s layer in :data:`LAYERS`; None when it is not in one."""
    for i, names in enumerate(LAYERS):
        if any(module == n or module.startswith(n + ".") for n in names):
            return i
    return None


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """``importer -> imported`` for every import that goes up the layers (or, from a foundation
    layer, out of them)."""
    bad = []
    for m, deps in sorted(graph.items()):
        lm = layer_of(m)
        if lm is None:
            continue
        for d in sorted(deps):
            ld = layer_of(d)
            if (ld is not None and ld > lm) or (ld is None and lm < FOUNDATION):
                bad.append(f"{m} -> {d}")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_planted_cycle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(g) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_in_edgekit():
    found = cycles(import_graph())
    assert not found, "import cycles between edgekit modules:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_layers_import_only_downwards():
    found = layer_violations(import_graph())
    assert not found, "imports up the layers of LAYERS:\n" + "\n".join(found)


def test_layer_check_finds_an_upward_import():
    assert layer_violations({"edgekit.runtimes.litert": {"edgekit.export.api"}}) == [
        "edgekit.runtimes.litert -> edgekit.export.api"]
    assert layer_violations({"edgekit.formats.x": {"edgekit.models.io"}}) == ["edgekit.formats.x -> edgekit.models.io"]
    assert layer_violations({"edgekit.export.api": {"edgekit.runtimes.base", "edgekit.models.io"}}) == []


def test_registration_edges_are_real():
    """Every allowed edge is an import that exists (a stale exception would hide nothing, but mislead)."""
    mods = _modules()
    for reg, plugin in REGISTRATION_EDGES:
        assert reg in mods and plugin in mods, (reg, plugin)
        text = mods[reg].read_text()
        assert plugin.rpartition(".")[2] in text, f"{reg} no longer imports {plugin}"
