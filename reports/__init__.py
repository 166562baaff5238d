"""lrsweep's report: the verdict, tables, plots and documents, from the results tables.

The tables' schema and store are `lrresults`, the statistics `lrstats`. This package imports nothing
heavy up front: `build_report`, `cli_report`, `main`,
`MixedResultsError` and `ReportPaths` load on first use.
"""

from __future__ import annotations

_LAZY = {
    "build_report": "reports.render",
    "cli_report": "reports.cli",
    "add_arguments": "reports.cli",
    "main": "reports.cli",
    "ReportPaths": "reports.render",
    "MixedResultsError": "reports.load",
    "load_results": "reports.load",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'reports' has no attribute {name!r}")
