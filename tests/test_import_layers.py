"""The import layers: no import cycle between the project's modules, and the two low packages import
only what their layer allows. Every import is read with ``ast``: at the top of a module, inside a
function and under ``TYPE_CHECKING`` alike (a lazy or typing-only import is still a dependency), so
the layering stays one way (docs/CONTRACTS.md, STYLE.md: nothing below imports upward).

- ``lrstats`` (the statistics): numpy, scipy, the standard library and itself; no Ray, torch, pyarrow
  or pandas, no I/O layer, nothing else of the project's.
- ``lrresults`` (the results tables' schema and store): pyarrow, the standard library and itself; no
  ``sweeps``, no ``reports``.
- docs/ARCHITECTURE.md: the packages and sub-packages it describes are the ones there are, its picture
  draws its table's layers, and every import runs from a higher layer to a lower one.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("vocab", "lrstats", "lrresults", "strategies", "trainables", "search_spaces", "sweeps", "reports",
            "lrsweep")


def modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name (a package by its ``__init__``)."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """Every dotted name ``name`` imports, the project's and others': ``import a.b`` -> a.b; ``from a import
    b`` -> a.b when that is a project module, else a; relative imports resolved against ``name``'s package."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports (`imported`, kept to ``known``)."""
    return {m for m in imported(name, path, known) if m in known and m != name}


def top_levels(package: str) -> dict[str, set[str]]:
    """Per module of ``package``, the top-level names of everything it imports (``scipy.stats`` -> scipy)."""
    found = modules()
    return {name: {m.split(".")[0] for m in imported(name, path, set(found))}
            for name, path in found.items() if name.split(".")[0] == package}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_cycle_and_resolves_relative_imports(tmp_path):
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    (tmp_path / "m.py").write_text("from . import sib\nfrom .sib import x\nimport pkg.other\n")
    assert imports("pkg.m", tmp_path / "m.py", {"pkg.sib", "pkg.other", "pkg"}) == {"pkg.sib", "pkg.other"}


def test_no_import_cycle_between_the_projects_modules():
    found = modules()
    graph = {name: imports(name, path, set(found)) for name, path in found.items()}
    circles = cycles(graph)
    assert circles == []


def test_the_checker_reads_imports_inside_functions_and_under_type_checking(tmp_path):
    (tmp_path / "m.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pandas as pd\n"
                                   "def f():\n    import ray.tune\n    from pyarrow import fs\n")
    assert imported("pkg.m", tmp_path / "m.py", set()) == {"typing", "pandas", "ray.tune", "pyarrow"}


STDLIB = set(sys.stdlib_module_names) | {"__future__"}


def test_the_statistics_import_numpy_scipy_and_the_standard_library_only():
    layers = top_levels("lrstats")
    assert {"lrstats", "lrstats.stats", "lrstats.selection", "lrstats.two_level"} <= set(layers)
    wrong = {name: sorted(tops - STDLIB - {"numpy", "scipy", "lrstats"}) for name, tops in layers.items()}
    assert not {name: tops for name, tops in wrong.items() if tops}, "lrstats imports outside numpy, scipy, stdlib"


def test_the_results_layer_imports_no_sweeps_and_no_reports():
    layers = top_levels("lrresults")
    assert {"lrresults", "lrresults.store", "lrresults.schema", "lrresults.crashpoints"} <= set(layers)
    wrong = {name: sorted(tops - STDLIB - {"pyarrow", "lrresults"}) for name, tops in layers.items()}
    assert not {name: tops for name, tops in wrong.items() if tops}, "lrresults imports outside pyarrow and stdlib"


# docs/ARCHITECTURE.md: its table and picture name the layers; the tests below hold the code to them.
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
ROW = re.compile(r"^\| (\d+) \| `([\w.]+)` \| (.*?) \|$", re.M)
PICTURE_LINE = re.compile(r"^\s*(\d+)\s+((?:\[[\w.]+\]\s*)+)")


def documented() -> dict[str, tuple[int, str]]:
    """The table of ARCHITECTURE.md: package (or module) -> (layer, what it holds)."""
    return {name: (int(layer), text.strip()) for layer, name, text in ROW.findall(ARCHITECTURE.read_text())}


def drawn() -> list[tuple[int, set[str]]]:
    """The picture of ARCHITECTURE.md, top line first: (layer, the packages drawn on it)."""
    text = ARCHITECTURE.read_text()
    picture = text.split("## The layers", 1)[1].split("```")[1]
    return [(int(m.group(1)), set(re.findall(r"\[([\w.]+)\]", m.group(2))))
            for m in map(PICTURE_LINE.match, picture.splitlines()) if m]


def owner(module: str, rows: Iterable[str], outermost: bool = False) -> str | None:
    """The row a module belongs to: the longest (or with ``outermost`` the shortest) row that is the module
    or a package holding it; None for a package split into rows (``sweeps``)."""
    holders = sorted((r for r in rows if module == r or module.startswith(r + ".")), key=len)
    return (holders[0] if outermost else holders[-1]) if holders else None


def upward_imports(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    """Every import from one row to another that does not run to a lower layer (``importer -> imported``)."""
    wrong = []
    for name, targets in graph.items():
        here = owner(name, layers, outermost=True)
        for target in targets:
            there = owner(target, layers, outermost=True)
            if here and there and here != there and layers[there] >= layers[here]:
                wrong.append(f"{name} (layer {layers[here]}) -> {target} (layer {layers[there]})")
    return sorted(wrong)


def test_the_layer_rule_catches_an_import_up_or_beside():
    layers = {"low": 1, "mid.a": 2, "mid.b": 2, "top": 3}
    graph = {"top.x": {"mid.a.y", "low"}, "mid.a.y": {"mid.a.z", "low"}, "mid.a.z": set(), "low": set(),
             "mid.b": {"mid.a.y"}}
    assert upward_imports(graph, layers) == ["mid.b (layer 2) -> mid.a.y (layer 2)"]
    graph["low"] = {"top.x"}
    assert upward_imports(graph, layers)[0] == "low (layer 1) -> top.x (layer 3)"


def test_architecture_describes_every_package_and_nothing_that_is_not_there():
    rows, found = documented(), modules()
    assert len(rows) >= len(PACKAGES) and all(text for _, text in rows.values())
    assert not sorted(set(rows) - set(found)), "ARCHITECTURE.md names a package that does not exist"
    packages = {name for name, path in found.items() if path.name == "__init__.py"}
    split = {p for p in packages if p not in rows and owner(p, rows) is None}
    assert split == {"sweeps"}, "a package is split into rows in ARCHITECTURE.md, or not described there"
    assert not imports("sweeps", found["sweeps"], set(found)), "sweeps/__init__.py hands names on"
    undescribed = sorted(p for p in packages - split if p not in rows)
    assert not undescribed, "packages ARCHITECTURE.md does not describe"
    loose = sorted(m for m in found if m not in packages and owner(m, rows) is None)
    assert not loose, "modules of sweeps/ that belong to no row of ARCHITECTURE.md"


def test_the_picture_draws_the_tables_layers_top_down():
    rows = documented()
    table: dict[int, set[str]] = {}
    for name, (layer, _) in rows.items():
        outer = owner(name, rows, outermost=True)
        assert rows[outer][0] == layer, f"{name} is drawn on another layer than {outer}, which holds it"
        if outer == name:
            table.setdefault(layer, set()).add(name)
    picture = drawn()
    assert [layer for layer, _ in picture] == sorted(table, reverse=True)
    assert dict(picture) == table


def test_every_import_runs_down_the_documented_layers():
    found = modules()
    graph = {name: imports(name, path, set(found)) for name, path in found.items()}
    layers = {name: layer for name, (layer, _) in documented().items()}
    assert upward_imports(graph, layers) == []
