"""A sweep's front door: run a new sweep, or resume an interrupted sweep or reproduction.

Both take the lease and hand a plan to ``sweeps.engine.experiment.execute``. A reproduction
(``sweeps.commands.reproduce``) is a client of the engine like a sweep, so the one ``resume`` that serves
both sits here, above the two, and the engine imports neither.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from lrresults.store import normalise
from sweeps.engine.experiment import execute, plan, tables_complete
from sweeps.observers.progress import say
from sweeps.record.durable import Lease, Record
from sweeps.record.storage import SweepDir, SweepError, command, load_sweep_spec
from sweeps.spec import Spec, plugins
from sweeps.spec.model import STUDY_SEED_STRIDE

__all__ = ["resume_sweep", "run_sweep"]


def run_sweep(spec: Spec, *, storage: str | None = None, address: str | None = None,
              num_cpus: int | None = None, out: Callable[[str], None] = say) -> int:
    """Run a new sweep; return the exit status (0 complete, 1 unequal budget). Refuses (SweepError,
    before writing anything) when the sweep directory already holds a sweep."""
    sweep = SweepDir.of(storage or spec.storage, spec.name)
    if sweep.read_text("spec.yaml") is not None or sweep.read_text("reproduce.yaml") is not None:
        raise SweepError(f"{sweep.root} already holds a sweep; continue it with `{command('resume', sweep.root)}` "
                         "or choose another name/storage")
    with Lease(sweep, out) as lease:
        if os.path.exists(sweep.journal_path):  # a cache of a URI sweep of the same name, long gone
            os.remove(sweep.journal_path)
        sweep.write_text("spec.yaml", spec.to_yaml())
        plugins.save_copies(spec.plugins, sweep.location)
        out(f"sweep {spec.name} (spec hash {spec.hash}) -> {sweep.root}")
        p = plan(spec, sweep, out, address, num_cpus)  # a calibration's range test can fail: the sweep resumes
        b = spec.budget
        if b.studies == 1:
            out(f"{len(p.pairs)} pairs x ({b.trials} tune trials, sampler {b.sampler} seed "
                f"{b.sampler_seed}, training seed {b.tune_seed}; then {spec.evaluation.describe()})")
        else:
            n = int(spec.evaluation.seeds)  # several studies take a fixed design (sweeps.spec)
            out(f"{len(p.pairs) // b.studies} pairs x {b.studies} tuning studies x ({b.trials} tune trials, sampler "
                f"{b.sampler} seed {b.sampler_seed}+j and training seed {b.tune_seed}+j in study j; then {n} seed "
                f"runs of each study's best, seeds {STUDY_SEED_STRIDE} j + 0..{n - 1})")
            if b.adaptive_studies:  # the studies above are the first stage
                out(f"studies: {b.study_selection.describe()}")
        return execute(p, address, num_cpus, out, lease)


def resume_sweep(directory: str, *, address: str | None = None, num_cpus: int | None = None,
                 out: Callable[[str], None] = say) -> int:
    """Finish an interrupted sweep (or reproduction) from its durable record: finished trials are
    kept, running ones go on from their last complete checkpoint. Refuses (SweepError, nothing
    changed) a directory that is not a sweep, a finished sweep, a record that cannot be read, and a
    sweep another driver holds."""
    found = SweepDir(normalise(directory))
    if found.read_text("spec.yaml") is None and found.read_text("reproduce.yaml") is not None:
        from sweeps.commands.reproduce import resume_reproduction

        return resume_reproduction(directory, address=address, num_cpus=num_cpus, out=out)
    spec, sweep = load_sweep_spec(directory)
    if tables_complete(sweep):
        raise SweepError(f"{sweep.root}: nothing to resume; tables are complete (trials, epochs, budget)")
    Record(sweep).runs()  # a damaged run record refuses here, before anything changes
    with Lease(sweep, out) as lease:
        out(f"resuming sweep {spec.name} (spec hash {spec.hash}) at {sweep.root}")
        return execute(plan(spec, sweep, out, address, num_cpus), address, num_cpus, out, lease)
