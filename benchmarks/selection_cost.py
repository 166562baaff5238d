"""What selection saves: expected seed runs of KN (docs/SELECTION.md) against the fixed two-stage designs
with the same guarantee, for the means and SDs of a real sweep, in one run.

For every workload of the sweep and each setting (indifference 0.5 and 1.0 pp, confidence 0.95, first
seeds 5 and 10, batches of 16 seeds), it simulates KN with the sweep's per-strategy means and SDs as the
truth (normal scores, one correlation between strategies: `lrstats.selection.pilot_covariance`) and
prints the expected and largest total seed runs against Rinott's two-stage design (different seeds per
strategy) and the Bonferroni paired-t two-stage design (common seeds), and KN / the cheaper of the two.
The issue's target is at most half.

    python benchmarks/selection_cost.py                           # the committed make-run figures
    python benchmarks/selection_cost.py --from results/quick      # any finished sweep directory

The committed figures (benchmarks/selection_quick.json) are the seed runs of one `make run` sweep
(sweeps/quick.yaml, 3 seeds per strategy); 3 seeds give rough SDs and a rougher correlation, so the
figures say what selection would cost for a sweep like that, not for that sweep exactly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lrstats.selection import (  # noqa: E402
    SelectionSettings,
    expected_fixed_seeds,
    normal_draw,
    pilot_covariance,
    simulate_kn,
)

FIGURES = ROOT / "benchmarks" / "selection_quick.json"
TARGET = 0.5
METRIC = "test_accuracy_final"


def scores_from_dir(directory: str) -> dict[str, dict[str, list[float]]]:
    """workload -> strategy -> percent test accuracy by seed, from a sweep's `trials` (seed runs, status ok)."""
    from lrresults.store import read_table
    from vocab.contracts import SEED

    t = read_table("trials", directory).to_pandas()
    t = t[(t["stage"] == SEED) & (t["status"] == "ok")].sort_values(["workload", "strategy", "seed"])
    out: dict[str, dict[str, list[float]]] = {}
    for (workload, strategy), group in t.groupby(["workload", "strategy"], sort=True):
        out.setdefault(workload, {})[strategy] = [100.0 * v for v in group[METRIC]]
    if not out:
        raise SystemExit(f"{directory}: no seed runs with status ok in trials.parquet")
    return out


def scores_from_figures(path: Path) -> tuple[dict[str, dict[str, list[float]]], str]:
    figures = json.loads(path.read_text())
    scores = {w: {s: [100.0 * v for v in acc] for s, acc in by.items()} for w, by in figures["workloads"].items()}
    return scores, figures["source"]


def compare(workload: str, scores: dict[str, list[float]], reps: int) -> list[float]:
    names, means, cov, rho = pilot_covariance(scores)
    k, seeds = len(names), min(len(v) for v in scores.values())
    sd = np.sqrt(np.diag(cov))
    print(f"\n{workload}: {k} strategies, {seeds} seeds each; means {means.min():.2f}-{means.max():.2f} pp, "
          f"SDs {sd.min():.2f}-{sd.max():.2f} pp (median {np.median(sd):.2f}), correlation between "
          f"strategies {rho:.2f}; {reps} simulated sweeps per row")
    top = means.max()
    print(f"  within 0.5 pp of the best mean: {int(np.sum(means >= top - 0.5))}, within 1.0 pp: "
          f"{int(np.sum(means >= top - 1.0))}")
    header = (f"  {'zone':>5} {'n0':>3} {'batch':>5} | {'KN mean':>8} {'q95':>6} {'max':>6} {'P(best)':>8} "
              f"{'P(in zone)':>10} | {'Rinott':>7} {'Bonf-t':>7} | {'KN/fixed':>8}")
    print(header)
    print("  " + "-" * (len(header) - 2))
    ratios = []
    for delta in (0.5, 1.0):
        for n0 in (5, 10):
            settings = SelectionSettings(delta, 0.95, n0, None, 16)
            sim = simulate_kn(k, settings, reps, normal_draw(means, cov, np.random.default_rng(0)))
            kn = sim.total.astype(float)
            rinott = expected_fixed_seeds(cov, settings, "rinott", reps, np.random.default_rng(1)).expected
            bonf = expected_fixed_seeds(cov, settings, "bonferroni", reps, np.random.default_rng(1)).expected
            ratio = kn.mean() / min(rinott, bonf)
            ratios.append(ratio)
            print(f"  {delta:5.1f} {n0:3d} {16:5d} | {kn.mean():8.0f} {np.quantile(kn, 0.95):6.0f} {kn.max():6.0f} "
                  f"{np.mean(sim.selected == np.argmax(means)):8.3f} "
                  f"{np.mean(means[sim.selected] >= top - delta):10.3f} | {rinott:7.0f} {bonf:7.0f} | {ratio:8.2f}")
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="directory", help="a finished sweep directory (default: the committed "
                        f"figures, {FIGURES.relative_to(ROOT)})")
    parser.add_argument("--reps", type=int, default=2000, help="simulated sweeps per row (default 2000)")
    args = parser.parse_args()
    if args.directory:
        scores, source = scores_from_dir(args.directory), args.directory
    else:
        scores, source = scores_from_figures(FIGURES)
    print(f"selection cost: KN (batches of 16) vs the fixed two-stage designs with the same guarantee, "
          f"confidence 0.95; figures from {source}")
    print("Seed runs in total over all strategies. Rinott: N_i = max(n0, ceil(h^2 S_i^2 / zone^2)), each strategy "
          "its own seeds; Bonf-t: every strategy max(n0, ceil(t^2 max S_il^2 / zone^2)), common seeds. "
          "P(best): KN picked the highest of these means; P(in zone): it picked one within the zone of it.")
    ratios = [r for workload in sorted(scores) for r in compare(workload, scores[workload], args.reps)]
    met = sum(r <= TARGET for r in ratios)
    print(f"\nKN / cheaper fixed design <= {TARGET}: {met} of {len(ratios)} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
