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
import gc
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


#: Figure width in inches and resolution: 7.5 in at 120 dpi is 900 px, inside the HTML page's 1200 px.
WIDTH, DPI = 7.5, 120
_META = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}
#: zlib level 3, not Pillow's 6: 40% less time encoding, 3% larger files (measured on the report's figures).
_OPTIONS = {"png": {"pil_kwargs": {"compress_level": 3}}, "svg": {}}


def save_to(fig, paths: dict[str, str]) -> None:
    """Write matplotlib figure `fig` to ``paths`` ({format: path}) and close it."""
    import matplotlib.pyplot as plt

    for ext, path in paths.items():
        fig.savefig(path, format=ext, metadata=_META[ext], dpi=DPI, **_OPTIONS[ext])
        # The layout solved for the PNG holds for the SVG: solving it again is half the figure's time.
        fig.set_layout_engine("none")
    plt.close(fig)


def warm_up() -> None:
    """Draw and encode a small figure with plain and mathtext labels (a log axis), so that the fonts and
    the text caches a process builds on its first figure are built."""
    import io

    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(figsize=(2, 1), dpi=DPI)
    axes.set_yscale("log")
    axes.plot([1, 2], [1e-3, 1e-1])
    axes.set_title("warm-up")
    fig.savefig(io.BytesIO(), format="png", **_OPTIONS["png"])
    plt.close(fig)


def _draw_and_write(draw: Draw, args: tuple, paths: dict[str, str]) -> None:
    save_to(_function(draw)(*args), paths)


def _start_worker(preload: tuple[str, ...]) -> None:
    """A worker's first work, done while the report reads its tables: import the modules of the figure
    functions (``preload``, dotted names, as the figures themselves are named) and draw text once (fonts,
    glyph and mathtext caches), so no figure waits on them."""
    global _pool
    _pool = None  # forked with the report's pool: work submitted to a worker draws its figures itself
    _pending.clear()
    for module in preload:
        importlib.import_module(module)
    warm_up()
    # What the worker holds now (modules, fonts, caches) lives as long as it does: out of the collector's
    # sight, each full collection that the figures' many objects set off walks only what the figures made
    # (collecting took 0.37-0.45 s of 13 figures' 4.2-4.6 s CPU, and 0.19-0.29 s frozen).
    gc.freeze()


_formats: tuple[str, ...] = ("png", "svg")
_pool: ProcessPoolExecutor | None = None
_pending: list[Future] = []


@contextlib.contextmanager
def writing(svg: bool = True, workers: int | None = None, preload: Sequence[str] = ()) -> Iterator[None]:
    """How `render` (and `reports.plots.save`) write figures within this block: PNG, plus SVG when ``svg``;
    and with ``workers`` processes (default: the CPUs this process may use), `render` hands each figure
    to a worker, which draws and writes it while the caller goes on (each worker imports the modules
    ``preload`` names when it starts). Leaving the block waits for every
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
                                    initializer=_start_worker, initargs=(tuple(preload),))
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


__all__ = ["DPI", "LAYER_METRICS", "TOP", "WIDTH", "Draw", "formats", "hparam_value", "render", "save_to",
           "strategy_colours", "submit", "warm_up", "writing"]


