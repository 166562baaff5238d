"""Do the verdicts of reruns of one spec contradict each other? Reads finished sweeps (the same spec run
with different tuning seeds, `budget.sampler_seed`) and lists every claim each verdict makes, then every
contradiction between two of them:

- run X claims "A below B" (shown worse: the paired t-test over the replicates, Holm over all pairs)
  while run Y claims "B below A";
- run X claims "A below the best" (outside the subset that could be the best) while run Y names A alone
  as the best (a subset of one).

    python benchmarks/verdict_consistency.py results/quick_s0 results/quick_s100 results/quick_s200 ...

Prints one line per run (its subset that could be the best, its 'below' claims) and the contradictions;
exits 1 when there is any. Issue 40's target for `make run`: none over four tuning seeds.
"""

from __future__ import annotations

import argparse
import sys
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def claims(directory: str) -> dict[str, tuple[set[tuple[str, str]], set[str], set[str]]]:
    """Per workload: the pairs (loser, winner) shown worse, the subset that could be the best, and the
    strategies claimed below the best."""
    from reports.analysis import analyse
    from reports.load import load_results

    a = analyse(load_results([directory]), margin=0.005, seed=0, thresholds=None)
    out = {}
    for workload, verdict in a.verdicts.items():
        below = {(loser, winner) for loser, winners in verdict.worse.items() for winner in winners}
        study = a.studies.get(workload)
        rows = list(study.mcb) if study is not None else a.mcb.get(workload, [])
        could = {r.name for r in rows if r.could_be_best}
        out[workload] = (below, could, {r.name for r in rows} - could)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", help="finished sweep directories of one spec")
    args = parser.parse_args()
    found = {d: claims(d) for d in args.sweeps}
    contradictions = []
    for d, by_workload in found.items():
        for workload, (below, could, worse) in sorted(by_workload.items()):
            print(f"{d} [{workload}]: could be the best: {', '.join(sorted(could))}; below the best: "
                  f"{len(worse)}; 'A below B' claims: {len(below)}")
    for (d1, c1), (d2, c2) in combinations(found.items(), 2):
        for workload in sorted(set(c1) & set(c2)):
            (below1, could1, worse1), (below2, could2, worse2) = c1[workload], c2[workload]
            for loser, winner in sorted(below1):
                if (winner, loser) in below2:
                    contradictions.append(f"{workload}: {d1} claims {loser} below {winner}; {d2} the reverse")
            for x, y, worse, could in ((d1, d2, worse1, could2), (d2, d1, worse2, could1)):
                if len(could) == 1 and next(iter(could)) in worse:
                    contradictions.append(f"{workload}: {x} claims {next(iter(could))} below the best; {y} names "
                                          "it the best")
    print(f"{len(contradictions)} contradiction(s) between {len(found)} runs")
    for line in contradictions:
        print(f"  {line}")
    return 1 if contradictions else 0


if __name__ == "__main__":
    raise SystemExit(main())
