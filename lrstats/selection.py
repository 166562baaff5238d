"""Selecting the best strategy with a stated guarantee: the statistics behind a selection sweep.

Pure functions over per-seed scores (numpy and scipy only: no Ray, torch or I/O), so the engine can
ask them after every batch of seeds and a simulation can call them thousands of times.

- `decide`: Kim & Nelson's (2001) fully sequential procedure KN, replayed from the scores so far. If
  the best mean leads every other by at least the indifference zone delta, KN selects it with
  probability at least `confidence` (normal scores, unequal variances, common seeds allowed).
- `mcb`: multiple comparisons with the best for a fixed design, in the Bonferroni form with paired
  differences that stays valid under common seeds and unequal variances.
  `mcb_from_widths` is its constrained step for any one-sided widths (`lrstats.studies` widens them
  by the test rows).
- `fixed_design_seeds`, `rinott_constant`, `expected_fixed_seeds`: the two-stage fixed designs with
  the same guarantee (Rinott 1978; Bonferroni with the paired t quantile), to compare costs.
- `simulate_kn`, `expected_seeds`, `pilot_covariance`: KN run on synthetic scores, vectorised over
  replications, for the cost of a sweep whose means and SDs a pilot (an earlier sweep) estimated.
- `guarantee`: what a selection guarantees, as a verdict's sentence; `settings_problems`: every bad
  setting at once, for a spec's error list.

`scores[name][j]` is always the score of seed j, the same seed number for every strategy. Docs:
docs/SELECTION.md.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.special

from lrstats import distributions as dist

#: Draws scores for a simulation: (rows of replications, first seed, end seed) -> (len(rows), k, end - first).
Draw = Callable[[np.ndarray, int, int], np.ndarray]


def settings_problems(indifference, confidence, first_seeds, max_seeds, batch, *, least_first: int = 2,
                      most_seeds: int | None = None, unit: str = "seeds",
                      capped: bool = False) -> list[tuple[str, str]]:
    """Every problem with these selection settings, as (field, message) pairs (empty: valid).

    The one validator of each setting: `SelectionSettings` raises with its messages and the spec adds
    them under ``evaluation.<field>``. ``least_first`` is the smallest n0: 2 by default, KN's own minimum
    (each S^2 needs n0 - 1 >= 1 degree of freedom; a study-level KN may have 2 studies), 3 for a spec's
    seeds (docs/SELECTION.md: h^2 for 18 strategies is 28,899 at n0 = 2, 338 at 3). ``most_seeds`` caps
    first_seeds and max_seeds (the spec's 1000), none by default. Scores are accuracies in percentage
    points everywhere lrsweep calls this, so a zone must lie in (0, 100). ``unit`` names what a replicate
    is, in the fields and the messages (``"studies"``: first_studies, max_studies for KN over tuning
    studies); ``capped``: a cap is required (no null max).
    """

    def is_int(x) -> bool:
        return isinstance(x, (int, np.integer)) and not isinstance(x, bool)

    def is_num(x) -> bool:
        return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)

    def up_to(low: str) -> str:
        return f"from {low} to {most_seeds}" if most_seeds is not None else f">= {low}"

    out = []
    if not (is_num(indifference) and 0 < indifference < 100):
        out.append(("indifference", f"got {indifference!r}; allowed: a number of percentage points in (0, 100)"))
    if not (is_num(confidence) and 0.5 < confidence < 1):
        out.append(("confidence", f"got {confidence!r}; allowed: a probability in (0.5, 1), e.g. 0.95"))
    first, most = f"first_{unit}", f"max_{unit}"
    first_ok = is_int(first_seeds) and first_seeds >= least_first and (most_seeds is None or first_seeds <= most_seeds)
    if not first_ok:
        out.append((first, f"got {first_seeds!r}; allowed: an integer {up_to(str(least_first))}"))
    if (max_seeds is not None or capped) and not (
            is_int(max_seeds) and max_seeds >= (first_seeds if first_ok else least_first)
            and (most_seeds is None or max_seeds <= most_seeds)):
        no_cap = "" if capped else ", or null (no cap: the procedure stops by itself)"
        out.append((most, f"got {max_seeds!r}; allowed: an integer {up_to(f'{first} ({first_seeds!r})')}{no_cap}"))
    if not (is_int(batch) and batch >= 1):
        out.append(("batch", f"got {batch!r}; allowed: an integer >= 1 ({unit} added per round)"))
    return out


@dataclass(frozen=True)
class SelectionSettings:
    """What a selection sweep asks for; invalid values raise `ValueError` naming every bad field."""

    indifference: float
    """delta, in percentage points of accuracy (the scores' units), in (0, 100)."""
    confidence: float
    """1 - alpha, e.g. 0.95."""
    first_seeds: int
    """n0 >= 2 (>= 3 recommended): the common first stage every strategy gets."""
    max_seeds: int | None
    """Cap on seeds per strategy (None: none). A cap that cuts the procedure short voids the guarantee."""
    batch: int = 1
    """Seeds added per round to every survivor (a population); screening at r = n0, n0+batch, ..."""

    def __post_init__(self):
        problems = settings_problems(self.indifference, self.confidence, self.first_seeds, self.max_seeds,
                                     self.batch)
        if problems:
            raise ValueError("; ".join(f"{field}: {message}" for field, message in problems))

    def next_r(self, r: int) -> int | None:
        """The screening after the one at `r` seeds, or None when `r` is the cap."""
        if self.max_seeds is not None and r >= self.max_seeds:
            return None
        nxt = r + self.batch
        return nxt if self.max_seeds is None else min(nxt, self.max_seeds)

    def grid_at_or_after(self, r: float) -> int:
        """The first screening with at least `r` seeds (uncapped): where a boundary closing at `r` is seen."""
        n0, b = self.first_seeds, self.batch
        return n0 if r <= n0 else n0 + b * math.ceil((r - n0) / b)


@dataclass(frozen=True)
class Round:
    """One screening: at `r` seeds per contender, who fell out and behind whom."""

    r: int
    contenders: tuple[str, ...]
    """Still in contention after this screening, best mean first."""
    eliminated: dict[str, str]
    """Eliminated here -> the strategy it trailed by the most beyond the boundary (mean_l - W_il - mean_i)."""


@dataclass(frozen=True)
class Decision:
    """Where KN stands after replaying the scores so far."""

    r: int
    """Seeds per contender the last screening used (0: none yet)."""
    contenders: tuple[str, ...]
    """Still in contention after the last screening, best mean first (name order before any screening)."""
    eliminated: dict[str, int]
    """Name -> seeds it had when eliminated (all rounds)."""
    selected: str | None
    """Set when the procedure has stopped."""
    stopped: bool
    capped: bool
    """Stopped by max_seeds before the procedure ended: the guarantee does not hold."""
    seeds_wanted: int
    """Seeds each contender must have before the next screening (== r when stopped)."""
    reason: str
    """One line in words."""
    rounds: tuple[Round, ...]
    """Every screening, in order."""
    closes_at: int | None = None
    """The screening (uncapped) by which the boundary of every remaining pair has closed, so the
    procedure has surely stopped: no contender gets more than min(closes_at, max_seeds) seeds.
    None before the first stage; r once stopped."""


def kn_constants(k: int, first_seeds: int, confidence: float) -> tuple[float, float]:
    """KN's (eta, h^2) for k systems, n0 first-stage seeds and confidence 1 - alpha (Kim & Nelson 2001, c = 1).

    eta = ((2 alpha / (k - 1))^(-2 / (n0 - 1)) - 1) / 2 and h^2 = 2 eta (n0 - 1): the Bonferroni split of
    alpha over the k - 1 comparisons with the best, each bounded by Fabian's triangular-region lemma.
    """
    if not (isinstance(k, (int, np.integer)) and k >= 2):
        raise ValueError(f"k must be an integer >= 2 (systems compared), got {k!r}")
    if not (isinstance(first_seeds, (int, np.integer)) and first_seeds >= 2):
        raise ValueError(f"first_seeds must be an integer >= 2, got {first_seeds!r}")
    alpha = 1.0 - confidence
    if not (0 < alpha and 2 * alpha / (k - 1) < 1):
        raise ValueError(f"confidence must be in ({max(0.0, 1 - (k - 1) / 2)}, 1) for k = {k}, got {confidence!r}")
    eta = 0.5 * ((2 * alpha / (k - 1)) ** (-2.0 / (first_seeds - 1)) - 1.0)
    return eta, 2.0 * eta * (first_seeds - 1)


def _pair_variances(first: np.ndarray) -> np.ndarray:
    """S^2_il: sample variances (n0 - 1 d.f.) of X_i - X_l over the first stage; `first` (R, k, n0) -> (R, k, k)."""
    centred = first - first.mean(axis=2, keepdims=True)
    diff = centred[:, :, None, :] - centred[:, None, :, :]
    return np.einsum("rikj,rikj->rik", diff, diff) / (first.shape[2] - 1)


def _boundary(s2: np.ndarray, r: int, h2: float, delta: float) -> np.ndarray:
    """KN's triangular continuation region W_il(r) = max(0, (delta / 2r) (h^2 S^2_il / delta^2 - r))."""
    return np.maximum(0.0, delta / (2.0 * r) * (h2 * s2 / delta**2 - r))


def _screen(means: np.ndarray, active: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One KN screening over R replications: i stays iff mean_i >= mean_l - W_il for every active l.

    means (R, k) (any value where inactive), active (R, k), w (R, k, k) -> (survivors (R, k), gap (R, k, k))
    with gap[., i, l] = mean_l - W_il - mean_i: i is eliminated by l where it is > 0.
    """
    gap = (means[:, None, :] - w) - means[:, :, None]
    gap = np.where(active[:, None, :], gap, -np.inf)
    return active & ~(gap > 0).any(axis=2), gap


def _closed(active: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Whether W_il = 0 for every pair of active systems, (R, k), (R, k, k) -> (R,): nothing left to screen."""
    both = active[:, :, None] & active[:, None, :]
    return ~((w > 0) & both).any(axis=(1, 2))


def _best(means: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Index of the highest mean among the active systems, ties to the lowest index (name order); (R,)."""
    return np.argmax(np.where(active, means, -np.inf), axis=1)


def _scores_array(scores: Mapping[str, Sequence[float]]) -> tuple[list[str], list[np.ndarray]]:
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError("scores must be a non-empty mapping of strategy name -> scores by seed")
    names = sorted(scores)
    return names, [np.asarray(scores[n], dtype=float).ravel() for n in names]


def _finite_prefix(name: str, x: np.ndarray, r: int) -> np.ndarray:
    head = x[:r]
    if not np.all(np.isfinite(head)):
        raise ValueError(f"scores of {name!r}: seed {int(np.argmin(np.isfinite(head)))} is not a finite number; "
                         "every seed a screening uses needs a score")
    return head


def decide(scores: Mapping[str, Sequence[float]], settings: SelectionSettings, unit: str = "seeds") -> Decision:
    """Replay KN over the scores so far and return where it stands (see the module and `Decision`); its
    ``reason`` counts replicates in ``unit`` (``"studies"`` when a replicate is a tuning study).

    Screens at r = n0, n0 + batch, ... (capped at max_seeds) while every contender has r scores; stops
    when one strategy is left, when the boundary has closed for every remaining pair (the best mean is
    selected), or at the cap (best mean, `capped`). Scores beyond those a screening used change
    nothing, so a resumed sweep replays to the same decisions. Ties go to name order.
    """
    if not isinstance(settings, SelectionSettings):
        raise ValueError(f"settings must be a SelectionSettings, got {type(settings).__name__}")
    names, rows = _scores_array(scores)
    k, n0, delta = len(names), settings.first_seeds, settings.indifference
    if k == 1:
        return Decision(0, (names[0],), {}, names[0], True, False, 0,
                        "one strategy: selected without screening", (), 0)
    if min(len(x) for x in rows) < n0:
        return Decision(0, tuple(names), {}, None, False, False, n0,
                        f"first stage: every strategy needs {n0} {unit}", ())

    _, h2 = kn_constants(k, n0, settings.confidence)
    first = np.stack([_finite_prefix(n, x, n0) for n, x in zip(names, rows, strict=True)])
    s2 = _pair_variances(first[None])[0]
    active = np.ones(k, dtype=bool)
    eliminated: dict[str, int] = {}
    rounds: list[Round] = []
    r = n0
    while True:
        means = np.array([_finite_prefix(n, x, r).mean() if a else np.nan
                          for n, x, a in zip(names, rows, active, strict=True)])
        w = _boundary(s2, r, h2, delta)[None]
        survive, gap = _screen(means[None], active[None], w)
        survive, gap = survive[0], gap[0]
        out = {names[i]: names[int(np.argmax(gap[i]))] for i in np.flatnonzero(active & ~survive)}
        eliminated.update((n, r) for n in out)
        active = survive
        order = sorted(np.flatnonzero(active), key=lambda i: (-means[i], i))
        contenders = tuple(names[i] for i in order)
        rounds.append(Round(r, contenders, out))
        closes = max(settings.grid_at_or_after(h2 * s2[i, j] / delta**2) for i in order for j in order)
        done = Decision(r, contenders, dict(eliminated), contenders[0], True, False, r, "", tuple(rounds), r)
        if len(contenders) == 1:
            return _with(done, f"one strategy left after screening at {r} {unit}")
        if _closed(active[None], w)[0]:
            return _with(done, f"the boundary closed at {r} {unit}: {contenders[0]} has the best mean of the "
                               f"{len(contenders)} left")
        nxt = settings.next_r(r)
        if nxt is None:
            return _with(done, f"cap of {r} {unit} reached with {len(contenders)} strategies in contention: "
                               f"{contenders[0]} has the best mean, and the guarantee does not hold", capped=True)
        if any(len(rows[i]) < nxt for i in order):
            return Decision(r, contenders, dict(eliminated), None, False, False, nxt,
                            f"{len(contenders)} strategies in contention after screening at {r} {unit}; "
                            f"each needs {nxt} for the next", tuple(rounds), closes)
        r = nxt


def _with(decision: Decision, reason: str, *, capped: bool = False) -> Decision:
    return dataclasses.replace(decision, reason=reason, capped=capped)


def guarantee(k: int, settings: SelectionSettings, *, capped: bool = False, unit: str = "pp") -> str:
    """KN's guarantee for k strategies in words a reader can check, and no more (docs/SELECTION.md)."""
    zone, conf = f"{settings.indifference:g} {unit}", f"{100 * settings.confidence:g}%"
    if capped:
        return (f"stopped by the cap of {settings.max_seeds} seeds before the procedure ended: the selection "
                f"carries no guarantee (the highest mean among the strategies still in contention)")
    if k == 1:
        return "only one strategy: nothing to select between"
    return (f"if the best of these {k} strategies, as tuned, leads every other by at least {zone}, it is the "
            f"one selected with probability at least {conf} (Kim & Nelson's KN); when several lie within "
            f"{zone} of the best, the selected one is not guaranteed to be within {zone} of it")


# --- simulation -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatedKN:
    """KN run on R replications of synthetic scores: per replication, what it selected and what it cost."""

    selected: np.ndarray
    """(R,) index of the selected system."""
    seeds: np.ndarray
    """(R, k) seeds each system got (r at its elimination, or the final r)."""
    capped: np.ndarray
    """(R,) stopped by max_seeds."""

    @property
    def total(self) -> np.ndarray:
        """(R,) total seed runs."""
        return self.seeds.sum(axis=1)


def normal_draw(means, cov, rng: np.random.Generator) -> Draw:
    """Scores ~ N(means, cov) independently per seed, correlated across systems as common seeds make them."""
    means = np.asarray(means, dtype=float)
    chol = np.linalg.cholesky(np.asarray(cov, dtype=float))

    def draw(rows: np.ndarray, start: int, end: int) -> np.ndarray:
        z = rng.standard_normal((len(rows), end - start, len(means)))
        return np.swapaxes(z @ chol.T + means, 1, 2)

    return draw


def simulate_kn(k: int, settings: SelectionSettings, reps: int, draw: Draw) -> SimulatedKN:
    """KN on `reps` synthetic experiments at once, with exactly `decide`'s screening, stopping and ties.

    `draw(rows, start, end)` returns the scores of seeds start..end-1 for those replications, shape
    (len(rows), k, end - start); only replications still running are drawn for.
    """
    n0, delta = settings.first_seeds, settings.indifference
    rows = np.arange(reps)
    if k == 1:
        return SimulatedKN(np.zeros(reps, dtype=int), np.zeros((reps, 1), dtype=int), np.zeros(reps, dtype=bool))
    _, h2 = kn_constants(k, n0, settings.confidence)
    first = draw(rows, 0, n0)
    s2 = _pair_variances(first)
    sums = first.sum(axis=2)
    active = np.ones((reps, k), dtype=bool)
    seeds = np.zeros((reps, k), dtype=int)
    selected = np.full(reps, -1)
    capped = np.zeros(reps, dtype=bool)
    running = rows
    r = n0
    while running.size:
        means = sums[running] / r
        w = _boundary(s2[running], r, h2, delta)
        survive, _ = _screen(means, active[running], w)
        seeds[running] = np.where(active[running] & ~survive, r, seeds[running])
        active[running] = survive
        nxt = settings.next_r(r)
        stop = (survive.sum(axis=1) == 1) | _closed(survive, w) | (nxt is None)
        done = running[stop]
        selected[done] = _best(means[stop], survive[stop])
        seeds[done] = np.where(survive[stop], r, seeds[done])
        if nxt is None:
            capped[done] = survive[stop].sum(axis=1) > 1
            capped[done] &= ~_closed(survive[stop], w[stop])
            break
        running = running[~stop]
        if running.size:
            sums[running] += draw(running, r, nxt).sum(axis=2)
        r = nxt
    return SimulatedKN(selected, seeds, capped)


@dataclass(frozen=True)
class SeedCost:
    """Total seed runs of a design over simulated experiments."""

    expected: float
    stderr: float
    """Monte Carlo standard error of `expected`."""
    q95: float
    max: int
    """Largest total seen over the replications."""
    capped_rate: float
    """Share of replications stopped by max_seeds (guarantee void there)."""
    reps: int
    bound: int | None = None
    """k * max_seeds: no run of the design can cost more; None without a cap (no bound exists)."""


def _cost(total: np.ndarray, settings: SelectionSettings, k: int, capped: np.ndarray | None = None) -> SeedCost:
    total = np.asarray(total, dtype=float)
    return SeedCost(float(total.mean()), float(total.std(ddof=1) / math.sqrt(total.size)),
                    float(np.quantile(total, 0.95)), int(total.max()),
                    0.0 if capped is None else float(np.mean(capped)), int(total.size),
                    None if settings.max_seeds is None else k * settings.max_seeds)


def pilot_covariance(scores: Mapping[str, Sequence[float]]) -> tuple[list[str], np.ndarray, np.ndarray, float]:
    """Names (sorted), means (k,), a covariance (k, k) and its correlation rho from a pilot's per-seed scores.

    A few seeds cannot estimate k x k covariances (with n < k seeds the sample covariance is singular),
    so the model keeps each strategy's own SD and one correlation for every pair: the mean of the
    pairwise sample correlations over the common seeds, clipped to [0, 0.95]. An SD of exactly 0 from a
    handful of seeds is not believable and would make the covariance singular: it is raised to a tenth
    of the pooled SD. At least 2 common seeds are needed.
    """
    names, rows = _scores_array(scores)
    n = min(len(x) for x in rows)
    x = np.stack([row[:n] for row in rows])
    x = x[:, np.all(np.isfinite(x), axis=0)]
    if x.shape[1] < 2:
        raise ValueError(f"scores: a pilot needs at least 2 seeds common to every strategy, got {x.shape[1]}")
    sd = x.std(axis=1, ddof=1)
    sd = np.maximum(sd, 0.1 * math.sqrt(np.mean(sd**2)))
    rho, varied = 0.0, x[x.std(axis=1) > 0]  # a constant strategy has no correlation to measure
    if len(varied) > 1:
        corr = np.corrcoef(varied)
        rho = float(np.clip(corr[~np.eye(len(varied), dtype=bool)].mean(), 0.0, 0.95))
    cov = sd[:, None] * ((1 - rho) * np.eye(len(names)) + rho) * sd[None, :]
    return names, x.mean(axis=1), cov, rho


def expected_seeds(means, cov, settings: SelectionSettings, reps: int = 2000,
                   rng: np.random.Generator | None = None) -> SeedCost:
    """Expected and largest total seed runs of KN when the true means (k,) and covariance (k, k) are these."""
    rng = np.random.default_rng(0) if rng is None else rng
    sim = simulate_kn(len(means), settings, reps, normal_draw(means, cov, rng))
    return _cost(sim.total, settings, len(means), sim.capped)


# --- fixed designs with the same guarantee ----------------------------------------------------------------


#: Gauss-Legendre nodes on (0, 1) for expectations over a chi-square variable by its quantile function.
_GL_NODES = 256


@functools.lru_cache(maxsize=256)
def rinott_constant(k: int, first_seeds: int, confidence: float) -> float:
    """Rinott's (1978) h: solves E_Y[ (E_X[ Phi(h / sqrt(nu (1/X + 1/Y))) ])^(k-1) ] = confidence, X, Y ~ chi^2_nu.

    nu = first_seeds - 1. Both expectations are Gauss-Legendre sums over the chi-square quantile
    function (u in (0, 1) -> F^-1(u)), so the integrand is bounded and smooth; then a root find in h.
    The tests check it against a Monte Carlo of the same expectation and the normal limit.
    """
    kn_constants(k, first_seeds, confidence)  # same validation
    nu = first_seeds - 1
    u, weight = np.polynomial.legendre.leggauss(_GL_NODES)
    u, weight = (u + 1) / 2, weight / 2
    x = dist.chi2_ppf(u, nu)
    scale = 1 / np.sqrt(nu * (1 / x[:, None] + 1 / x[None, :]))  # [y, x]

    def pcs(h: float) -> float:
        inner = scipy.special.ndtr(h * scale) @ weight
        return float(inner ** (k - 1) @ weight)

    from scipy.optimize import brentq  # costs 0.2 s to import: only where Rinott's h is solved

    return float(brentq(lambda h: pcs(h) - confidence, 1e-3, 100.0, xtol=1e-8))


def bonferroni_t(k: int, first_seeds: int, confidence: float) -> float:
    """The paired t quantile t_{1 - alpha/(k-1), n0 - 1} of the Bonferroni two-stage design under common seeds."""
    kn_constants(k, first_seeds, confidence)
    return float(dist.t_ppf(1 - (1 - confidence) / (k - 1), first_seeds - 1))


def _fixed_totals(first: np.ndarray, settings: SelectionSettings, method: str) -> np.ndarray:
    """Seeds per system of a fixed two-stage design from first-stage scores (R, k, n0) -> (R, k)."""
    k, n0, delta = first.shape[1], settings.first_seeds, settings.indifference
    if method == "rinott":
        h = rinott_constant(k, n0, settings.confidence)
        need = h**2 * first.var(axis=2, ddof=1) / delta**2
    elif method == "bonferroni":
        t = bonferroni_t(k, n0, settings.confidence)
        need = np.repeat((t**2 * _pair_variances(first).max(axis=(1, 2)) / delta**2)[:, None], k, axis=1)
    else:
        raise ValueError(f"method must be one of 'bonferroni', 'rinott', got {method!r}")
    n = np.maximum(n0, np.ceil(need - 1e-9)).astype(int)
    return n if settings.max_seeds is None else np.minimum(n, settings.max_seeds)


def fixed_design_seeds(scores: Mapping[str, Sequence[float]], settings: SelectionSettings,
                       method: str = "bonferroni") -> dict[str, int]:
    """Total seeds per strategy that a fixed two-stage design asks for after the first stage's scores.

    `bonferroni` (valid under common seeds, unequal variances): every strategy gets
    N = max(n0, ceil(t^2 max_il S_il^2 / delta^2)) with t = t_{1-alpha/(k-1), n0-1} and S_il^2 the paired
    differences' variance; then the best mean is selected. `rinott` (Rinott 1978; assumes independent
    strategies, i.e. different seeds per strategy): N_i = max(n0, ceil(h^2 S_i^2 / delta^2)). Neither
    eliminates. A cap (max_seeds) applies as in KN and voids the guarantee the same way.
    """
    names, rows = _scores_array(scores)
    n0 = settings.first_seeds
    if len(names) == 1:
        return {names[0]: 0}
    if min(len(x) for x in rows) < n0:
        raise ValueError(f"scores: every strategy needs first_seeds = {n0} scores")
    first = np.stack([_finite_prefix(n, x, n0) for n, x in zip(names, rows, strict=True)])[None]
    return dict(zip(names, (int(v) for v in _fixed_totals(first, settings, method)[0]), strict=True))


def expected_fixed_seeds(cov, settings: SelectionSettings, method: str = "bonferroni", reps: int = 2000,
                         rng: np.random.Generator | None = None) -> SeedCost:
    """Expected total seed runs of a fixed two-stage design when the scores' covariance is `cov` (k, k).

    Its first stage decides everything and the means do not enter; first stages are drawn as normal.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    k = len(cov)
    first = normal_draw(np.zeros(k), cov, rng)(np.arange(reps), 0, settings.first_seeds)
    return _cost(_fixed_totals(first, settings, method).sum(axis=1), settings, k)


# --- multiple comparisons with the best ---------------------------------------------------------------------


@dataclass(frozen=True)
class McbRow:
    """One strategy's simultaneous interval for mu_i - max_{l != i} mu_l, on a fixed design."""

    name: str
    mean: float
    lower: float
    upper: float
    could_be_best: bool
    """upper > 0: not shown worse than the best at the stated confidence."""
    n: int = field(default=0)
    """Common seeds used."""


def mcb(scores: Mapping[str, Sequence[float]], confidence: float = 0.95) -> list[McbRow]:
    """Multiple comparisons with the best under common seeds and unequal variances, best mean first.

    Constrained MCB intervals (Hsu 1984) built from paired differences with Bonferroni widths
    w_il = t_{1-alpha/(k-1), n-1} S_il / sqrt(n) (Nelson & Matejcik 1995's approach for common random
    numbers): upper_i = max(0, min_l (m_i - m_l + w_il)); G = {i : upper_i > 0}, the subset that could
    be the best; lower_i = 0 if G = {i}, else min(0, min_{l in G, l != i} (m_i - m_l - w_il)). All k
    intervals hold together with probability >= confidence (normal scores). Only seeds where every
    strategy has a finite score are used; at least 2 are needed.
    """
    names, rows = _scores_array(scores)
    if not (isinstance(confidence, (int, float)) and 0 < confidence < 1):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    n_all = min(len(x) for x in rows)
    x = np.stack([row[:n_all] for row in rows])
    x = x[:, np.all(np.isfinite(x), axis=0)]
    k, n = x.shape
    m = x.mean(axis=1)
    if k == 1:
        return [McbRow(names[0], float(m[0]) if n else math.nan, math.nan, math.nan, True, n)]
    if n < 2:
        raise ValueError(f"scores: MCB needs at least 2 seeds common to every strategy, got {n}")
    t = dist.t_ppf(1 - (1 - confidence) / (k - 1), n - 1)
    return mcb_from_widths(names, m, t * np.sqrt(_pair_variances(x[None])[0] / n), n)


def mcb_from_widths(names: Sequence[str], means, widths, n: int) -> list[McbRow]:
    """Hsu's constrained MCB intervals from the means (k,) and the one-sided half-widths w_il (k, k), best first.

    w_il bounds how far m_i - m_l may fall below mu_i - mu_l, each at alpha / (k - 1): `mcb` builds them
    from paired t statements; `lrstats.studies` from two-level ones (tuning, seeds and test rows).
    upper_i = max(0, min_l (m_i - m_l + w_il)); G = {i : upper_i > 0}; lower_i = 0 if G = {i}, else
    min(0, min_{l in G, l != i} (m_i - m_l - w_il)).
    """
    m, w, k = np.asarray(means, dtype=float), np.asarray(widths, dtype=float), len(names)
    diff = m[:, None] - m[None, :]
    off = ~np.eye(k, dtype=bool)
    upper = np.maximum(0.0, np.where(off, diff + w, np.inf).min(axis=1))
    group = upper > 0
    if not group.any():  # every width 0 and all tied: no system is shown to lead
        group = np.ones(k, dtype=bool)
    lower = np.empty(k)
    for i in range(k):
        others = group & off[i]
        lower[i] = 0.0 if not others.any() else min(0.0, float((diff[i] - w[i])[others].min()))
    order = sorted(range(k), key=lambda i: (-m[i], i))
    return [McbRow(names[i], float(m[i]), float(lower[i]), float(upper[i]), bool(upper[i] > 0), n) for i in order]
