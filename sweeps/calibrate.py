"""Calibrated lr ranges (the spec's ``calibrate`` section): one LR range test per pair before tuning.

Every pair runs the same procedure (``trainables.lr_range``: the same ramp, steps and seed, on the
tune-stage training split, from the strategy's canonical settings) and searches ``lr`` from the
steepest descent of the smoothed loss to its minimum, widened to hold the canonical value and
rounded outwards. Each pair's result is written to ``calibration.json`` in the sweep directory as
soon as it is known, so a resumed or extended sweep reuses it and runs only the pairs it lacks. The
tests run in the driver process before Ray starts; their cost (steps, epochs, gradient evaluations,
seconds) is recorded apart from the tuning budget.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping

from sweeps import catalog
from sweeps.spec import Spec
from sweeps.storage import SweepDir, SweepError
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
    start = time.perf_counter()
    test = lrr.range_test_workload(workload.name, strategy, min_lr=c.min_lr, max_lr=c.max_lr, steps=c.steps,
                                   options=workload.options_dict, seed=c.seed, data_dir=spec.data_dir)
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


def calibrate(spec: Spec, sweep: SweepDir, out: Callable[[str], None] = print) -> dict[str, dict]:
    """Pair key -> its calibration (see ``_run``): read from the sweep's ``calibration.json``, the
    pairs it lacks run now and added to it one by one. Empty when the spec calibrates nothing."""
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
    for w, s in todo:
        key = Pair(w.name, s).key
        pairs[key] = _run(spec, w, s)
        r = pairs[key]
        out(f"  {key}: {r['hparam']} [{r['low']:.3g}, {r['high']:.3g}] (default [{r['default_low']:.3g}, "
            f"{r['default_high']:.3g}]); {r['steps']} steps, {r['seconds']:.1f} s")
        sweep.write_text(FILE, json.dumps(found, indent=1, sort_keys=True))
    return {Pair(w.name, s).key: pairs[Pair(w.name, s).key] for w, s in spec.pairs()}


def override(calibration: Mapping | None) -> dict[str, tuple[float, float]]:
    """A pair's calibration as a search-space override, ``{hparam: (low, high)}`` (none without one)."""
    return {calibration["hparam"]: (calibration["low"], calibration["high"])} if calibration else {}


def cost_line(calibrated: Mapping[str, Mapping]) -> str:
    """The calibration's cost over the pairs, in the tuning budget's units (and seconds), said apart."""
    steps = sum(c["steps"] for c in calibrated.values())
    evals = sum(c["grad_evals"] for c in calibrated.values())
    epochs = [c["epochs"] for c in calibrated.values()]
    seconds = sum(c["seconds"] for c in calibrated.values())
    passes = f"{sum(epochs):.2f} epochs, " if all(e is not None and math.isfinite(e) for e in epochs) else ""
    return (f"calibration cost (apart from the tuning budget): {len(calibrated)} range tests, {steps} steps = "
            f"{passes}{evals} gradient evaluations, {seconds:.1f} s")
