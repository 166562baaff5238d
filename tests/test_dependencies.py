"""Every third-party module the project imports (at the top of a module or inside a function, read
with ``ast``) comes from a distribution that ``pyproject.toml`` declares: the packages' from the
dependencies or an optional extra (a tracker's library), the tests' and the docs' scripts' from those
or the dev extra. A library that only arrives through another's dependencies (``rich`` through
transformers) can vanish with that library's next release."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("vocab", "lrstats", "lrresults", "strategies", "trainables", "search_spaces", "sweeps", "reports",
            "lrsweep", "cluster", "benchmarks")
DEV_ONLY = ("tests", "docs")


def _name(requirement: str) -> str:
    """A requirement's distribution name, normalised (PEP 503): ``ray[tune]==2.6`` -> ``ray``."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)[0]).lower()


def declared() -> tuple[set[str], set[str]]:
    """The distributions the packages may import (dependencies and every extra but dev), and those the
    tests may import besides (the dev extra, with the extras it names of lrsweep itself)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})

    def names(requirements: list[str]) -> set[str]:
        out = set()
        for r in requirements:
            if _name(r) == project["name"]:  # "lrsweep[tensorboard,...]": those extras
                out |= names([d for e in re.search(r"\[(.*)\]", r)[1].split(",") for d in extras[e.strip()]])
            else:
                out.add(_name(r))
        return out

    runtime = names(project["dependencies"]) | names([r for e, rs in extras.items() if e != "dev" for r in rs])
    return runtime, runtime | names(extras.get("dev", []))


def third_party_imports(folder: str) -> dict[str, str]:
    """Each third-party top-level module imported under ``folder``, with one file that imports it."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                # The project's own: a package, a module beside this one, or a test helper (benchmarks
                # put tests/ on the path for its data writers).
                local = any(p.exists() for p in (ROOT / top, path.parent / f"{top}.py", path.parent / top,
                                                 ROOT / "tests" / f"{top}.py"))
                if top not in sys.stdlib_module_names and top != "__future__" and not local:
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_imported_library_is_a_declared_dependency():
    runtime, dev = declared()
    providers = importlib.metadata.packages_distributions()
    problems = []
    for folders, allowed, where in ((PACKAGES, runtime, "dependencies or a tracker's extra"),
                                    (DEV_ONLY, dev, "dependencies or an extra, dev included")):
        for folder in folders:
            for module, path in third_party_imports(folder).items():
                dists = {_name(d) for d in providers.get(module, ())}
                if not dists & allowed:
                    problems.append(f"{path} imports {module} (from {sorted(dists) or 'no installed distribution'}), "
                                    f"not in pyproject.toml's {where}")
    assert not problems, "\n".join(problems)


def test_the_checker_reads_requirements_and_sees_rich():
    assert [_name(r) for r in ("ray[default,tune]==2.60.0", "PyYAML>=6", "scikit_posthocs", "moto[server]>=5.1")] == \
        ["ray", "pyyaml", "scikit-posthocs", "moto"]
    assert third_party_imports("sweeps")["rich"] == "sweeps/observers/watch.py"
    runtime, dev = declared()
    assert {"rich", "mlflow"} <= runtime and "pytest" in dev - runtime
