"""Plugins: user code that registers workloads and strategies, imported by the driver and every Ray worker.

A plugin is an ordinary Python module. Three ways name one, all of them imported before a spec is
validated:

- the spec's ``plugins: [my_workloads, ./my_workloads.py, ./my_pkg]``: a module name, a ``.py``
  file or a package directory, paths relative to the spec file;
- ``lrsweep run/submit --plugin X`` (repeatable), paths relative to the current directory;
- the entry-point group ``lrsweep.plugins`` of installed distributions (``[project.entry-points.
  "lrsweep.plugins"] mine = "my_pkg.lrsweep_plugin"``), loaded always.

Importing the module is all a plugin needs: its top level calls ``register_workload`` and
``strategies.register_strategy`` (or anything else it likes).

The code travels with the job, not with the machines: every plugin that is not an installed
distribution goes into the Ray job's ``runtime_env`` as a ``py_modules`` entry (Ray uploads it to
every node, locally, with ``run --address`` and with ``submit``), and ``LRSWEEP_PLUGINS`` (a
runtime_env variable) names the modules a trial imports before it looks its workload up. A sweep
directory keeps a copy of each plugin under ``plugins/`` and the module names in ``spec.yaml``, so
``status`` and ``resume`` import exactly the code the sweep started with.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lrresults.store import Location

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "Plugin",
    "PluginError",
    "import_plugins",
    "load_entry_points",
    "resolve",
    "runtime_env",
]

ENTRY_POINT_GROUP = "lrsweep.plugins"
ENV_VAR = "LRSWEEP_PLUGINS"
"""Comma-separated module names every trial imports first (set through the job's runtime_env)."""
TEXT_TASKS_VAR = "LRSWEEP_TEXT_TASKS"
"""Comma-separated names of the text tasks the spec defines (``{text: {name: ...}}``), registered by
every trial first; their facts travel in the trial's workload options."""
PROJECT_PACKAGES = ("strategies", "trainables", "search_spaces", "sweeps", "reports", "lrsweep", "vocab", "lrstats",
                    "lrresults")


class PluginError(ValueError):
    """A plugin that cannot be found or imported; the message names it and says why."""


@dataclass(frozen=True)
class Plugin:
    """One plugin: the module name it is imported as, and the file or package directory that must
    travel with the job (None when every node has it already: an installed distribution)."""

    module: str
    source: str | None = None


def _shipped(module: str) -> str | None:
    """The file or package directory of an importable ``module``'s top-level package, unless it is
    installed (site-packages) or part of lrsweep itself."""
    top = module.split(".")[0]
    if top in PROJECT_PACKAGES:
        return None
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        return None
    path = Path(spec.submodule_search_locations[0]) if spec.submodule_search_locations else Path(spec.origin)
    if {"site-packages", "dist-packages"} & set(path.parts):
        return None
    return str(path)


def _from_env() -> list[str]:
    return [m for m in os.environ.get(ENV_VAR, "").split(",") if m]


def resolve(entry: str, base: str | Path | None = None) -> Plugin:
    """The plugin an entry names: a ``.py`` file or a package directory (relative to ``base``), or
    a module name. Raises PluginError naming the entry when there is no such thing."""
    if not isinstance(entry, str) or not entry.strip():
        raise PluginError(f"got {entry!r}; allowed: a module name, a .py file or a package directory")
    looks_like_path = entry.endswith(".py") or "/" in entry or os.sep in entry
    if looks_like_path:
        path = Path(entry).expanduser()
        if not path.is_absolute() and base is not None:
            path = Path(base) / path
        name = path.stem if path.suffix == ".py" else path.name
        if path.is_file() and path.suffix == ".py":
            return Plugin(name, str(path.resolve()))
        if path.is_dir() and (path / "__init__.py").is_file():
            return Plugin(name, str(path.resolve()))
        # Inside a Ray Job (``lrsweep submit``) the plugin came as a py_modules entry and is
        # importable by its name, though the path written in the spec is not there.
        if name in _from_env() and importlib.util.find_spec(name) is not None:
            return Plugin(name, _shipped(name))
        what = "a .py file or a package directory (with __init__.py)"
        raise PluginError(f"{entry!r}: no such file or package directory ({path}); allowed: {what}")
    try:
        found = importlib.util.find_spec(entry)
    except (ImportError, ValueError) as err:
        raise PluginError(f"{entry!r}: cannot be imported ({err})") from None
    if found is None:
        raise PluginError(f"{entry!r}: no module of that name is importable; allowed: an importable module "
                          "name, a .py file or a package directory (relative to the spec file)")
    return Plugin(entry, _shipped(entry))


def _import(plugin: Plugin) -> None:
    if plugin.module in sys.modules:
        return
    try:
        if plugin.source is not None and importlib.util.find_spec(plugin.module) is None:
            # A file or package directory that is not on sys.path: import it under the name it has
            # on the workers (where py_modules puts it on the path), and leave sys.path alone, so
            # that the driver sees exactly the code that travels: that file or package, no siblings.
            source = Path(plugin.source)
            if source.is_dir():
                spec = importlib.util.spec_from_file_location(
                    plugin.module, source / "__init__.py", submodule_search_locations=[str(source)])
            else:
                spec = importlib.util.spec_from_file_location(plugin.module, source)
            module = importlib.util.module_from_spec(spec)
            sys.modules[plugin.module] = module
            spec.loader.exec_module(module)
        else:
            importlib.import_module(plugin.module)
    except Exception as err:
        sys.modules.pop(plugin.module, None)
        raise PluginError(f"{plugin.module!r}: importing it failed: {type(err).__name__}: {err}") from err


def load_entry_points() -> list[str]:
    """Import every installed ``lrsweep.plugins`` entry point; return their names."""
    names = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as err:
            raise PluginError(f"entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP}: importing it "
                              f"failed: {type(err).__name__}: {err}") from err
        names.append(ep.name)
    return names


def import_plugins(plugins: Iterable[Plugin]) -> None:
    """Import the given plugins (each once per process) and the installed entry points."""
    for plugin in plugins:
        _import(plugin)
    load_entry_points()


def import_from_env() -> None:
    """On a Ray worker: import the modules ``LRSWEEP_PLUGINS`` names (shipped by py_modules) and
    register the spec's text tasks ``LRSWEEP_TEXT_TASKS`` names."""
    import_plugins(Plugin(m) for m in _from_env())
    tasks = [t for t in os.environ.get(TEXT_TASKS_VAR, "").split(",") if t]
    if tasks:
        from trainables.workloads.builtin import spec_task

        for task in tasks:
            spec_task(task)


def runtime_env(plugins: Sequence[Plugin], text_tasks: Sequence[str] = ()) -> dict:
    """The runtime_env entries that make ``plugins`` importable, and ``text_tasks`` registered, on
    every worker of the job."""
    env_vars = {}
    if plugins:
        env_vars[ENV_VAR] = ",".join(p.module for p in plugins)
    if text_tasks:
        env_vars[TEXT_TASKS_VAR] = ",".join(text_tasks)
    env: dict = {"env_vars": env_vars} if env_vars else {}
    sources = sorted({p.source for p in plugins if p.source is not None})
    if sources:
        env["py_modules"] = sources
    return env


def as_packages(plugins: Sequence[Plugin], directory: str | Path) -> list[Plugin]:
    """``plugins`` with each single-file one staged as a package ``<directory>/<module>/__init__.py``:
    a Ray Job's runtime_env (``lrsweep submit``) takes only directories as ``py_modules``, and
    a directory travels as the package of its name, importable as the file was."""
    out = []
    for plugin in plugins:
        if plugin.source is not None and Path(plugin.source).is_file():
            package = Path(directory) / plugin.module
            package.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(plugin.source, package / "__init__.py")
            plugin = Plugin(plugin.module, str(package))
        out.append(plugin)
    return out


# --- the copies a sweep directory keeps ----------------------------------------------------------

PLUGIN_DIR = "plugins"


def save_copies(plugins: Sequence[Plugin], directory: str | Location) -> None:
    """Copy each plugin's file or package into ``<directory>/plugins/`` (local or a URI)."""
    import pyarrow.fs as pafs

    from lrresults.store import Location, is_uri, make_dirs

    shipped = [p for p in plugins if p.source is not None]
    if not shipped:
        return
    at = Location.of(directory)
    fs, base = at.fs, at.base
    for plugin in shipped:
        source = Path(plugin.source)
        target = f"{base}/{PLUGIN_DIR}/{source.name}"
        make_dirs(fs, target if source.is_dir() else f"{base}/{PLUGIN_DIR}")
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            if not is_uri(at.uri):
                shutil.copytree(source, target, ignore=ignore, dirs_exist_ok=True)
                continue
        pafs.copy_files(str(source), target, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)


def local_copies(directory: str) -> Path | None:
    """A local directory holding the sweep's plugin copies (downloaded when the sweep is on a URI)."""
    import pyarrow.fs as pafs

    from lrresults.store import cache_name, is_uri

    if not is_uri(directory):
        path = Path(directory) / PLUGIN_DIR
        return path if path.is_dir() else None
    fs, base = pafs.FileSystem.from_uri(directory)
    if fs.get_file_info(f"{base}/{PLUGIN_DIR}").type != pafs.FileType.Directory:
        return None
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lrsweep" / "plugins"
    local = cache / cache_name(directory)
    shutil.rmtree(local, ignore_errors=True)
    local.mkdir(parents=True)
    pafs.copy_files(f"{base}/{PLUGIN_DIR}", str(local), source_filesystem=fs,
                    destination_filesystem=pafs.LocalFileSystem())
    return local


def recorded(modules: Sequence[str], directory: str) -> list[Plugin]:
    """The plugins a sweep directory recorded: module names, imported from its copies when present."""
    copies = local_copies(directory)
    out = []
    for module in modules:
        source = None
        if copies is not None:
            for candidate in (copies / f"{module}.py", copies / module):
                if candidate.exists():
                    source = str(candidate)
        out.append(Plugin(module, source) if source else resolve(module))
    return out
