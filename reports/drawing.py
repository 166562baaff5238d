"""How the report's figures are written, and what the report needs of them, without importing matplotlib.

`writing` opens a block in which `render` hands each figure to a worker process that draws and writes
it while the report goes on building its sections. The report's own process never draws when it has
workers, so it never pays for importing matplotlib (about 0.4 s); each worker imports it once, on
starting, while the report is still reading and analysing its tables. A figure is named by its
function's dotted path (``"reports.plots.forest"``), which the drawing process imports. The strategies'
colours, the `TOP` count and `hparam_value` are here too: the report prepares figures with them.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import math
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

#: How many of the best strategies the line figures (learning and budget curves) draw in colour.
TOP = 5
#: The per-layer diagnostics the layer figure draws (column of the ``layers`` table, label).
LAYER_METRICS = (("update_ratio", "update / weight norm"), ("grad_norm", "gradient norm"),
                 ("trust_ratio", "trust ratio"))
#: matplotlib's tab20 then tab20b colours, as its colormaps hold them (each channel a multiple of 1/255).
_PALETTE = ("#1f77b4 #aec7e8 #ff7f0e #ffbb78 #2ca02c #98df8a #d62728 #ff9896 #9467bd #c5b0d5 #8c564b #c49c94 "
            "#e377c2 #f7b6d2 #7f7f7f #c7c7c7 #bcbd22 #dbdb8d #17becf #9edae5 #393b79 #5254a3 #6b6ecf #9c9ede "
            "#637939 #8ca252 #b5cf6b #cedb9c #8c6d31 #bd9e39 #e7ba52 #e7cb94 #843c39 #ad494a #d6616b #e7969c "
            "#7b4173 #a55194 #ce6dbd #de9ed6").split()


def strategy_colours(strategies: Sequence[str]) -> dict[str, tuple]:
    """One colour per strategy, in the order given (tab20, then tab20b): the same in every figure."""
    palette = [tuple(int(h[i:i + 2], 16) / 255 for i in (1, 3, 5)) for h in _PALETTE]
    # tab20's dark shades first, then the light ones, so neighbours in the order differ most.
    palette = palette[0:20:2] + palette[1:20:2] + palette[20:]
    return {s: palette[i % len(palette)] for i, s in enumerate(strategies)}


def hparam_value(hparams_json: str, name: str) -> float:
    """The number ``name`` in a JSON hyperparameter object; NaN when absent or not a number."""
    v = _parsed(hparams_json).get(name)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan


@functools.lru_cache(maxsize=4096)
def _parsed(hparams_json: str) -> dict:
    # A trial's object is read once per searched hyperparameter and figure: parse it once (read-only).
    try:
        v = json.loads(hparams_json) if hparams_json else {}
    except ValueError:
        return {}
    return v if isinstance(v, dict) else {}


Draw = Callable | str
"""A figure function (returning a matplotlib Figure), or its dotted path, ``"reports.plots.forest"``."""


def render(draw: Draw, args: tuple, directory: str, stem: str) -> dict[str, str]:
    """Draw ``draw(*args)`` and write it under `directory` as ``stem`` (PNG, and SVG as `writing` says);
    inside a `writing` block with workers, a worker process draws and writes it while the caller goes
    on, and the files exist when that block ends. ``draw`` is a module-level function or its dotted
    path, ``args`` what it draws from (both travel to the worker by pickle). Returns {format: path}."""
    paths = _paths(directory, stem)
    if _pool is None:
        _draw_and_write(draw, args, paths)
    else:
        _pending.append(_pool.submit(_draw_and_write, draw, args, paths))
    return paths


def submit(fn: Callable, *args) -> Future:
    """``fn(*args)`` in a worker of the `writing` block, for work the report can do beside its own (``fn``
    module-level; its arguments and result travel by pickle), or here and now without workers. The
    future holds the result, or the error."""
    if _pool is not None:
        return _pool.submit(fn, *args)
    future: Future = Future()
    try:
        future.set_result(fn(*args))
    except Exception as e:  # noqa: BLE001 - handed to the caller through the future, as a worker would
        future.set_exception(e)
    return future


def _paths(directory: str, stem: str) -> dict[str, str]:
    os.makedirs(directory, exist_ok=True)
    return {ext: os.path.join(directory, f"{stem}.{ext}") for ext in _formats}


def _function(draw: Draw) -> Callable:
    if callable(draw):
        return draw
    module, name = draw.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def _draw_and_write(draw: Draw, args: tuple, paths: dict[str, str]) -> None:
    from reports import plots

    plots.save_to(_function(draw)(*args), paths)


def _start_worker() -> None:
    """A worker's first work, done while the report reads its tables: import matplotlib and the figure
    functions, and draw text once (fonts, glyph and mathtext caches), so no figure waits on them."""
    from reports import plots

    plots.warm_up()


_formats: tuple[str, ...] = ("png", "svg")
_pool: ProcessPoolExecutor | None = None
_pending: list[Future] = []


@contextlib.contextmanager
def writing(svg: bool = True, workers: int | None = None) -> Iterator[None]:
    """How `render` (and `reports.plots.save`) write figures within this block: PNG, plus SVG when ``svg``;
    and with ``workers`` processes (default: the CPUs this process may use), `render` hands each figure
    to a worker, which draws and writes it while the caller goes on. Leaving the block waits for every
    file and raises the first error. Drawing is most of a report's time, and no figure needs another.

    The workers are forked when the block starts (Linux only; elsewhere, or with one CPU, figures are
    written here, in turn): forking, unlike spawning, does not import the caller's script again.
    """
    global _formats, _pool
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    parallel = workers > 1 and _pool is None and sys.platform == "linux"
    formats, _formats = _formats, ("png", "svg") if svg else ("png",)
    if parallel:
        # With fork, the executor starts every worker at the first submit: all of them now, each warming up.
        _pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                                    initializer=_start_worker)
        _pool.submit(os.getpid)
    try:
        yield
        if parallel:
            for future in _pending:
                future.result()
    finally:
        _formats = formats
        if parallel:
            pool, _pool = _pool, None
            _pending.clear()
            pool.shutdown(wait=True, cancel_futures=True)


def formats() -> tuple[str, ...]:
    """The formats figures are written in here and now (see `writing`)."""
    return _formats


__all__ = ["LAYER_METRICS", "TOP", "Draw", "formats", "hparam_value", "render", "strategy_colours", "submit",
           "writing"]


