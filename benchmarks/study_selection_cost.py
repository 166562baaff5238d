"""What a study-level guarantee costs: KN with the tuning study as the replicate (docs/SELECTION.md,
"Study-level replicates"), simulated by `lrstats.studies.study_cost`, for 18 strategies.

The truth is the issue's measurement on `sweeps/quick.yaml` (four sampler seeds): a strategy's 10-seed mean
moves by a median 0.95 pp from one tuning study to the next, against a standard error of 0.31 pp within
one, i.e. a tuning SD of about 0.95 pp and a seed SD of about 1.0 pp. Means: the least-favourable
configuration for the zone (one strategy exactly delta ahead, the rest tied), the costliest case KN's
guarantee is stated for; correlation 0.2 between strategies from common studies and from common seeds.
Prints, per zone, first-stage studies n0 and seeds per study: KN's h^2, and the expected, 95th-percentile
and largest total studies over all 18 strategies, and the seed runs they retrain.

    python benchmarks/study_selection_cost.py            # about 1 min on one core
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lrstats.selection import SelectionSettings  # noqa: E402
from lrstats.studies import study_cost  # noqa: E402

K, SD_TUNING, SD_SEED, RHO, REPS = 18, 0.95, 1.0, 0.2, 400


def main() -> None:
    print(f"k = {K}, tuning SD {SD_TUNING} pp, seed SD {SD_SEED} pp, correlation {RHO}, {REPS} simulated sweeps, "
          "least-favourable means, confidence 0.95, one study per round")
    print("| zone | n0 studies | seeds per study | h^2 | studies expected | 95th pct | max | seed runs expected |")
    print("|---|---|---|---|---|---|---|---|")
    for zone in (1.0, 0.5):
        for n0 in (5, 10):
            for seeds in (1, 3):
                settings = SelectionSettings(zone, 0.95, first_seeds=n0, max_seeds=None, batch=1)
                c = study_cost(K, settings, SD_TUNING, SD_SEED, seeds, rho_tuning=RHO, rho_seed=RHO, reps=REPS,
                               rng=np.random.default_rng(0))
                print(f"| {zone:g} pp | {n0} | {seeds} | {c.h2:.1f} | {c.studies.expected:.0f} | {c.studies.q95:.0f} | "
                      f"{c.studies.max} | {c.seed_runs:.0f} |")


if __name__ == "__main__":
    main()
