"""Calibrated lr ranges (the spec's ``calibrate`` section): one LR range test per pair before tuning.

Every pair runs the same procedure (``trainables.lr_range``: the same ramp, steps and seed, on the
tune-stage training split, from the strategy's canonical settings) and searches ``lr`` from the
steepest descent of the smoothed loss to its minimum, widened to hold the canonical value and
rounded outwards. Each pair's result is written to ``calibration.json`` in the sweep directory as
soon as it is known, so a resumed or extended sweep reuses it and runs only the pairs it lacks. The
tests run before tuning, as Ray tasks side by side (a sweep) or one after another in the calling
process; their cost (steps, epochs, gradient evaluations, seconds) is recorded apart from the tuning
budget.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping

from lrresults.store import is_uri
from sweeps.record.storage import SweepDir, SweepError
from sweeps.spec import Spec, catalog
from vocab.contracts import Pair

__all__ = ["FILE", "calibrate", "cost_line", "override"]

FILE = "calibration.json"


def _run(spec: Spec, workload, strategy: str) -> dict:
    """One pair's range test and the range it gives (the default range, with a note, if the test
    suggests none)."""
    import strategies
    from trainables import lr_range as lrr

    c = spec.calibrate
    default = catalog.space(workload.name, workload.options_dict, strategy, spec.overrides(strategy))[c.hparam]
    entry = strategies.get_strategy(strategy)
    allowed = next(h for h in entry.hparams if h.name == c.hparam)
    data_dir = spec.data_dir
    if data_dir and not is_uri(data_dir):
        data_dir = os.path.abspath(data_dir)  # Ray runs tasks in their own working directories
    start = time.perf_counter()
    test = lrr.range_test_workload(workload.name, strategy, min_lr=c.min_lr, max_lr=c.max_lr, steps=c.steps,
                                   options=workload.options_dict, seed=c.seed, data_dir=data_dir)
    seconds = time.perf_counter() - start
    ran = len(test.curve.lrs)
    out = {"hparam": c.hparam, "steps": ran, "steps_planned": c.steps, "min_lr": c.min_lr, "max_lr": c.max_lr,
           "seed": c.seed,
           "grad_evals": ran * entry.passes_per_step,
           "epochs": ran / test.steps_per_epoch if test.steps_per_epoch else None,
           "seconds": round(seconds, 3), "device": test.device,
           "default_low": default.low, "default_high": default.high,
           "steepest_lr": None, "minimum_lr": None, "divergence_lr": test.curve.divergence_lr}
    try:
        found = lrr.suggest(test.curve, test.hparams[c.hparam], allowed.high)
    except lrr.RangeTestError as err:
        return {**out, "low": default.low, "high": default.high,
                "notes": [f"the range test suggested no range ({err}): the default range is kept"]}
    # Outward to 3 significant digits, printed as such (0.00499, not 0.0049900000000000005).
    low = max(float(f"{lrr.outward(found.low, up=False):.3g}"), allowed.low)
    high = min(float(f"{lrr.outward(found.high, up=True):.3g}"), allowed.high)
    return {**out, "low": low, "high": high, "steepest_lr": found.steepest_lr, "minimum_lr": found.minimum_lr,
            "notes": list(found.notes)}


def _remote(spec: Spec, workload, strategy: str) -> dict:
    """``_run`` in a Ray worker, after the sweep's plugins are imported there (as a trial does)."""
    from sweeps.spec.plugins import import_from_env

    import_from_env()
    return _run(spec, workload, strategy)


def _on_ray(spec: Spec, sweep: SweepDir, todo: list, address: str | None,
            num_cpus: int | None) -> Iterator[tuple[tuple, dict]]:
    """Each pair's ``_run`` as a Ray task with a trial's resources, yielded as it ends. Ray is
    started (and stopped again) here when it is not running yet: the sweep starts its own after."""
    import ray

    from sweeps.engine.ray_setup import init_ray

    started = init_ray(address, num_cpus, spec, sweep)
    try:
        task = ray.remote(num_cpus=spec.resources.cpu, num_gpus=spec.resources.gpu, max_retries=0)(_remote)
        running = {task.remote(spec, w, s): (w, s) for w, s in todo}
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            yield running.pop(done[0]), ray.get(done[0])
    finally:
        if started:
            ray.shutdown()


def calibrate(spec: Spec, sweep: SweepDir, out: Callable[[str], None] = print, *, on_ray: bool = False,
              address: str | None = None, num_cpus: int | None = None) -> dict[str, dict]:
    """Pair key -> its calibration (see ``_run``): read from the sweep's ``calibration.json``, the
    pairs it lacks run now and added to it one by one. Empty when the spec calibrates nothing.

    ``on_ray``: run the pairs' tests as Ray tasks (``address``, ``num_cpus`` as the sweep's), side
    by side and where the trials run (a cluster's GPUs), not one after another in this process."""
    if spec.calibrate is None:
        return {}
    text = sweep.read_text(FILE)
    found = json.loads(text) if text else {"procedure": spec.calibrate.to_dict(), "pairs": {}}
    if found["procedure"] != spec.calibrate.to_dict():
        raise SweepError(f"{sweep.path(FILE)} was calibrated by {found['procedure']}, the spec asks "
                         f"{spec.calibrate.to_dict()}; allowed: the sweep's own spec")
    pairs = found["pairs"]
    todo = [(w, s) for w, s in spec.pairs() if Pair(w.name, s).key not in pairs]
    if todo:
        out(f"calibrating the {spec.calibrate.hparam} range of {len(todo)} pairs: LR range test, "
            f"{spec.calibrate.steps} steps from {spec.calibrate.min_lr:g} to {spec.calibrate.max_lr:g}, seed "
            f"{spec.calibrate.seed}, the same for every pair")
    start = time.perf_counter()
    results = (_on_ray(spec, sweep, todo, address, num_cpus) if on_ray and len(todo) > 1
               else (((w, s), _run(spec, w, s)) for w, s in todo))
    for (w, s), r in results:
        key = Pair(w.name, s).key
        pairs[key] = r
        out(f"  {key}: {r['hparam']} [{r['low']:.3g}, {r['high']:.3g}] (default [{r['default_low']:.3g}, "
            f"{r['default_high']:.3g}]); {r['steps']} steps, {r['seconds']:.1f} s")
        sweep.write_text(FILE, json.dumps(found, indent=1, sort_keys=True))
    if todo:
        out(f"calibration took {time.perf_counter() - start:.1f} s elapsed (Ray's start included)")
    return {Pair(w.name, s).key: pairs[Pair(w.name, s).key] for w, s in spec.pairs()}


override = catalog.calibration_override  # below sweeps.record.results, which reads it too


def cost_line(calibrated: Mapping[str, Mapping]) -> str:
    """The calibration's cost over the pairs, in the tuning budget's units (and seconds), said apart."""
    steps = sum(c["steps"] for c in calibrated.values())
    evals = sum(c["grad_evals"] for c in calibrated.values())
    epochs = [c["epochs"] for c in calibrated.values()]
    seconds = sum(c["seconds"] for c in calibrated.values())
    passes = f"{sum(epochs):.2f} epochs, " if all(e is not None and math.isfinite(e) for e in epochs) else ""
    return (f"calibration cost (apart from the tuning budget): {len(calibrated)} range tests, {steps} steps = "
            f"{passes}{evals} gradient evaluations, {seconds:.1f} s summed over the tests")
