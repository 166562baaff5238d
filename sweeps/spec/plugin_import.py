"""Importing a spec's plugins first, so that what they register validates like the built-in names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sweeps.spec.checks import Problems

__all__ = ["import_spec_plugins"]


def import_spec_plugins(raw: Any, base: str | Path | None, extra: tuple[str, ...], p: Problems) -> tuple:
    """Resolve and import the spec's ``plugins`` (relative to ``base``) and the ``--plugin`` ones,
    before anything that may name what they register is validated."""
    from sweeps.spec.plugins import PluginError, import_plugins, load_entry_points, resolve

    allowed = "a list of module names, .py files or package directories (relative to the spec file)"
    entries = [] if raw is None else raw
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        p.add("plugins", f"got {raw!r}; allowed: {allowed}")
        entries = []
    found = []
    named = [(f"plugins[{i}]", e, base) for i, e in enumerate(entries)] + [("--plugin", e, None) for e in extra]
    for where, entry, entry_base in named:
        try:
            plugin = resolve(entry, entry_base)
            import_plugins([plugin])
        except PluginError as err:
            p.add(where, str(err))
            continue
        if plugin not in found:
            found.append(plugin)
    try:
        load_entry_points()
    except PluginError as err:
        p.add("(entry points)", str(err))
    return tuple(found)
