"""lrsweep from Python, for notebooks and scripts: the ``lrsweep run`` and ``resume`` commands as calls.

    import lrsweep

    directory = lrsweep.run_sweep("sweeps/quick.yaml", storage="./results")   # a path, a dict or a Spec
    lrsweep.resume_sweep(directory)                                           # after an interruption

Both return the sweep directory (a ``Path``, or the URI string for remote storage) holding the
``trials``, ``epochs`` and ``budget`` Parquet tables; ``reports.build_report(directory)`` writes the
report. A bad spec raises ``SpecError`` (every problem, with field paths) before anything is
written; a sweep directory that already holds a sweep raises ``SweepError``. A sweep that could not
give every pair its budget (trials errored beyond retries) still returns its directory: its budget
table says which pairs are incomplete (``complete=False``), as ``lrsweep run``'s exit status 1 does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sweeps.spec import Spec, SpecError, load_spec, parse_spec

__all__ = ["Spec", "SpecError", "SweepError", "load_spec", "resume_sweep", "run_sweep"]


def __getattr__(name: str) -> Any:
    if name == "SweepError":  # sweeps.record.storage pulls in pyarrow: imported only when asked for
        from sweeps.record.storage import SweepError

        return SweepError
    raise AttributeError(name)


def _directory(location: str) -> Path | str:
    """A sweep directory as returned to callers: a ``Path``, or the URI string for remote storage."""
    from lrresults.store import is_uri, normalise

    root = normalise(location)
    return root if is_uri(root) else Path(root)


def run_sweep(
    spec: str | Path | Mapping | Spec,
    *,
    storage: str | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    plugins: Sequence[str] = (),
    out: Callable[[str], None] = print,
) -> Path | str:
    """Run a sweep to the end and return its directory, ``<storage>/<name>``.

    ``spec``: a YAML file (its plugin paths relative to it), a spec mapping as the YAML would hold
    it (plugin paths relative to the current directory), or a parsed ``Spec``. ``storage`` overrides
    the spec's; ``address`` joins a Ray cluster (default: an embedded local Ray, ``num_cpus`` CPUs);
    ``plugins`` are imported as ``--plugin`` ones are; ``out`` receives the progress lines.
    """
    from sweeps.commands.launch import run_sweep as run
    from sweeps.record.storage import SweepDir

    if isinstance(spec, str | Path):
        spec = load_spec(spec, tuple(plugins))
    elif isinstance(spec, Mapping):
        spec = parse_spec(spec, "spec", base=Path.cwd(), plugins=tuple(plugins))
    elif plugins:
        raise SpecError(["plugins: pass plugins with a spec path or mapping; a parsed Spec has its own"])
    run(spec, storage=storage, address=address, num_cpus=num_cpus, out=out)
    return _directory(SweepDir.of(storage or spec.storage, spec.name).root)


def resume_sweep(directory: str | Path, *, address: str | None = None, num_cpus: int | None = None,
                 out: Callable[[str], None] = print) -> Path | str:
    """Finish an interrupted sweep or reproduction (finished trials are kept) and return its
    directory; a finished or unreadable one raises SweepError and is left unchanged."""
    from sweeps.commands.launch import resume_sweep as resume

    resume(str(directory), address=address, num_cpus=num_cpus, out=out)
    return _directory(str(directory))
