"""The 18 strategies of docs/STRATEGIES.md as frozen registry entries, and ``register_strategy`` for more
(the six modern baselines register themselves from ``strategies/modern.py``, as a plugin's do).

Everything that differs between strategies is a field of ``Strategy`` (canonical settings,
hyperparameter ranges, whether groups get discriminative decay, and small builder functions for
the update and the schedule); ``Strategy.build`` is the same code for all of them.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from strategies import schedules
from strategies.hparams import FINETUNE_LR, HParam, StrategyError, canonical, resolve_hparams
from strategies.schedules import Schedule
from strategies.stepper import Stepper, Update
from vocab.contracts import SCRATCH

if TYPE_CHECKING:
    import torch

# Torch, the optimizers and the wrappers are imported inside the builders, so that the registry's
# metadata (names, families, hyperparameter ranges) imports without torch: a spec validates fast.

__all__ = ["MODERN", "SELECTIONS", "HParam", "Run", "Strategy", "StrategyError", "get_strategy", "list_strategies",
           "register_strategy"]

ETA_MIN = 1e-5  # floor of cosine_sgd and sgdr (docs/STRATEGIES.md)


@dataclass(frozen=True)
class Run:
    """The length of the run a Stepper is built for."""

    total_steps: int
    steps_per_epoch: int
    regime: str = SCRATCH  # Muon and Prodigy adapt to fine-tuning (strategies/modern.py)


@dataclass(frozen=True, eq=False)
class Strategy:
    """A frozen description of one strategy; ``build`` turns it into a Stepper for one run."""

    name: str
    generation: str
    family: str
    description: str
    hparams: tuple[HParam, ...]
    defaults: Mapping[str, float]
    make_update: Callable[[list[dict], dict[str, Any], Run], Update]
    make_schedule: Callable[[dict[str, Any], Run], Schedule] = lambda hp, run: schedules.constant
    discriminative: bool = False
    variant_of: str | None = None  # a "<name>@paper_code" variant names the strategy it departs from
    passes_per_step: int = 1
    """Gradient evaluations (forward and backward passes) per optimizer step: SAM's 2. A budget in
    gradient evaluations (``budget.unit``) gives the strategy that many times fewer steps."""
    # Settings the "finetune" regime lays over the family's fine-tune LR (Prodigy keeps lr 1).
    finetune: Mapping[str, float] = dataclasses.field(default_factory=lambda: MappingProxyType({}))

    def canonical(self, regime: str = SCRATCH) -> dict[str, Any]:
        """A fresh dict of the paper's settings; "finetune" swaps the LR and adds the warmup fraction."""
        return canonical(self, regime)

    def build(
        self,
        layer_groups: Sequence[Sequence[torch.nn.Parameter]],
        hparams: Mapping[str, Any] | None,
        total_steps: int,
        steps_per_epoch: int,
        regime: str = SCRATCH,
        schedule: Schedule | None = None,
    ) -> Stepper:
        """A Stepper for ``layer_groups`` (bottom to top) over a run of ``total_steps`` steps.

        ``hparams``: values laid over the canonical ones by ``resolve_hparams`` (a trial passes the
        dict it resolved, which comes through unchanged). ``schedule``: one that replaces the
        strategy's own and the regime's warmup (the LR range test's ramp); None keeps them.
        """
        for field, value in (("total_steps", total_steps), ("steps_per_epoch", steps_per_epoch)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise StrategyError(f"strategy {self.name!r}: {field} = {value!r} must be an int >= 1")
        from strategies.param_groups import build_param_groups

        config = resolve_hparams(self, regime, sampled=hparams)
        run = Run(int(total_steps), int(steps_per_epoch), regime)
        try:
            groups = build_param_groups(layer_groups, config["decay_factor"] if self.discriminative else None)
        except ValueError as error:
            raise StrategyError(f"strategy {self.name!r}: {error}") from error
        for group in groups:
            group["lr"] = config["lr"] * group["lr_scale"]
        update = self.make_update(groups, config, run)
        return Stepper(update, self.schedule(config, run) if schedule is None else schedule)

    def schedule(self, config: Mapping[str, Any], run: Run) -> Schedule:
        """The LR schedule ``build`` gives a run with resolved ``config``: the strategy's own, with the
        fine-tune regime's warmup composed on (``strategies.stacked`` builds the same per member)."""
        return schedules.with_warmup(self.make_schedule(config, run), run.total_steps,
                                     config.get("ft_warmup_frac", 0.0))


# ----- hyperparameter specs (names shared with search_spaces/, docs/CONTRACTS.md) ------------------

LR = HParam("lr", 0.0, 10.0, low_inclusive=False)
MOMENTUM = HParam("momentum", 0.0, 1.0, high_inclusive=False)
WEIGHT_DECAY = HParam("weight_decay", 0.0, 1.0)
BETA1 = HParam("beta1", 0.0, 1.0, high_inclusive=False)
BETA2 = HParam("beta2", 0.0, 1.0, high_inclusive=False)
TRUST_COEF = HParam("trust_coef", 0.0, 10.0, low_inclusive=False)
FILTER_ALPHA = HParam("filter_alpha", 0.0, 1.0)
TH1 = HParam("th1", -1.0, 1.0)
TH2 = HParam("th2", -1.0, 1.0)
WARMUP_FRAC = HParam("warmup_frac", 0.0, 1.0, high_inclusive=False)
T_0_EPOCHS = HParam("T_0_epochs", 1, 1000, kind="int")
T_MULT = HParam("T_mult", 1, 10, kind="int")
FINAL_LR = HParam("final_lr", 0.0, 10.0, low_inclusive=False)
DECAY_FACTOR = HParam("decay_factor", 1.0, 10.0)
CUT_FRAC = HParam("cut_frac", 0.0, 1.0, low_inclusive=False, high_inclusive=False)
RATIO = HParam("ratio", 1.0, 1000.0)
RHO = HParam("rho", 0.0, 10.0, low_inclusive=False)
GROK_ALPHA = HParam("grok_alpha", 0.0, 1.0, high_inclusive=False)
GROK_LAMBDA = HParam("grok_lambda", 0.0, 100.0)
LOOKAHEAD_K = HParam("lookahead_k", 1, 100, kind="int")
LOOKAHEAD_ALPHA = HParam("lookahead_alpha", 0.0, 1.0, low_inclusive=False)
FT_WARMUP_FRAC = HParam("ft_warmup_frac", 0.0, 1.0, high_inclusive=False)

SGD_HPARAMS = (LR, MOMENTUM, WEIGHT_DECAY)
ADAM_HPARAMS = (LR, BETA1, BETA2, WEIGHT_DECAY)
SGD_DEFAULTS = {"momentum": 0.9, "weight_decay": 1e-4}
ADAM_DEFAULTS = {"lr": 3e-4, "beta1": 0.9, "beta2": 0.999, "weight_decay": 0.0}
DALS_HPARAMS = (LR, MOMENTUM, WEIGHT_DECAY, TRUST_COEF, FILTER_ALPHA, TH1, TH2)
DALS_DEFAULTS = {"lr": 0.03, "momentum": 0.9, "weight_decay": 1e-4, "trust_coef": 0.02, "filter_alpha": 0.6,
                 "th1": 0.01, "th2": 0.002}


# ----- builders: (param groups with their peak "lr", config, run) -> update -------------------------

def _betas(hp: dict[str, Any]) -> tuple[float, float]:
    return (hp["beta1"], hp["beta2"])


def sgd_update(groups: list[dict], hp: dict[str, Any], run: Run) -> Update:
    """Heavy-ball momentum without dampening, coupled L2 decay: torch's SGD as it is."""
    import torch

    return torch.optim.SGD(groups, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"])


def _adam(groups: list[dict], hp: dict[str, Any], run: Run) -> Update:
    import torch

    return torch.optim.Adam(groups, lr=hp["lr"], betas=_betas(hp), weight_decay=hp["weight_decay"])


def adamw_update(groups: list[dict], hp: dict[str, Any], run: Run) -> Update:
    import torch

    return torch.optim.AdamW(groups, lr=hp["lr"], betas=_betas(hp), weight_decay=hp["weight_decay"])


def _radam(groups: list[dict], hp: dict[str, Any], run: Run) -> Update:
    import torch

    return torch.optim.RAdam(groups, lr=hp["lr"], betas=_betas(hp), weight_decay=hp["weight_decay"])


def _adabound(groups: list[dict], hp: dict[str, Any], run: Run) -> Update:
    """pytorch-optimizer's AdaBound, built at the peak LR so its final_lr follows the schedule.

    ``weight_decouple=False``: the AdaBound paper's decay is coupled L2 like Adam's; the
    library's default is decoupled.
    """
    from pytorch_optimizer import AdaBound

    return AdaBound(groups, lr=hp["lr"], final_lr=hp["final_lr"], betas=_betas(hp),
                    weight_decay=hp["weight_decay"], weight_decouple=False)


def _lion(groups: list[dict], hp: dict[str, Any], run: Run) -> Update:
    """pytorch-optimizer's Lion: sign of interpolated momentum, decoupled decay (the paper's)."""
    from pytorch_optimizer import Lion

    return Lion(groups, lr=hp["lr"], betas=_betas(hp), weight_decay=hp["weight_decay"])


def _lookahead_adamw(groups: list[dict], hp: dict[str, Any], run: Run) -> Update:
    from pytorch_optimizer import Lookahead

    return Lookahead(adamw_update(groups, hp, run), k=hp["lookahead_k"], alpha=hp["lookahead_alpha"])


def _lars(groups: list[dict], hp: dict[str, Any], run: Run) -> Update:
    from strategies.lars import LARS

    return LARS(groups, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"],
                trust_coef=hp["trust_coef"])


def _sam(groups: list[dict], hp: dict[str, Any], run: Run) -> Update:
    """pytorch-optimizer's SAM with ``adaptive=True`` (ASAM) over torch's SGD."""
    import torch
    from pytorch_optimizer import SAM

    from strategies.wrappers import TwoPassSAM

    return TwoPassSAM(SAM(groups, base_optimizer=torch.optim.SGD, rho=hp["rho"], adaptive=True,
                          lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"]))


def _grokfast(groups: list[dict], hp: dict[str, Any], run: Run) -> Update:
    from strategies.wrappers import GrokfastFilter

    params = [p for group in groups for p in group["params"]]
    return GrokfastFilter(sgd_update(groups, hp, run), params, alpha=hp["grok_alpha"], lamb=hp["grok_lambda"])


def _dals_settings(hp: dict[str, Any]) -> dict[str, Any]:
    return dict(lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"],
                trust_coef=hp["trust_coef"], filter_alpha=hp["filter_alpha"], th1=hp["th1"], th2=hp["th2"])


def _dals(groups: list[dict], hp: dict[str, Any], run: Run) -> Update:
    from strategies.dals import DALS

    return DALS(groups, **_dals_settings(hp))


def _dals_fast(groups: list[dict], hp: dict[str, Any], run: Run) -> Update:
    from strategies.dals import DALS

    return DALS(groups, **_dals_settings(hp), phase0_bypass=True)


def _dals_acc(groups: list[dict], hp: dict[str, Any], run: Run) -> Update:
    from strategies.dals import DALS

    return DALS(groups, **_dals_settings(hp), phase0_floor=0.4, phase0_drop=0.15)


# ----- schedules: (config, run) -> (t, peak lr) -> lr, bound from strategies/schedules.py ------------

def _cosine(hp: dict[str, Any], run: Run) -> Schedule:
    return partial(schedules.cosine, T=run.total_steps, eta_min=ETA_MIN)


def _sgdr(hp: dict[str, Any], run: Run) -> Schedule:
    return partial(schedules.sgdr, T_0=hp["T_0_epochs"] * run.steps_per_epoch, T_mult=hp["T_mult"], eta_min=ETA_MIN)


def _stlr(hp: dict[str, Any], run: Run) -> Schedule:
    return partial(schedules.stlr, T=run.total_steps, cut_frac=hp["cut_frac"], ratio=hp["ratio"])


def _warmup_cosine(hp: dict[str, Any], run: Run) -> Schedule:
    """DALS and DALS-Fast: warmup then cosine to 0, a multiple of the peak."""
    return schedules.Scaled(partial(schedules.warmup_cosine, T=run.total_steps, warmup_frac=hp["warmup_frac"]))


def _restarts(hp: dict[str, Any], run: Run) -> Schedule:
    """DALS-Acc: SGDR without warmup or floor, a multiple of the peak."""
    return schedules.Scaled(partial(schedules.restarts, T_0=hp["T_0_epochs"] * run.steps_per_epoch,
                                    T_mult=hp["T_mult"]))


# ----- the registry -------------------------------------------------------------------------------

def strategy_entry(name: str, generation: str, family: str, description: str, hparams: tuple[HParam, ...],
              defaults: dict[str, float], make_update: Callable, **fields: Any) -> Strategy:
    """An entry; every strategy also takes ``ft_warmup_frac`` (set by the "finetune" regime)."""
    names = [spec.name for spec in hparams]
    assert sorted(names) == sorted(defaults), f"{name}: hparams {names} != defaults {sorted(defaults)}"
    return Strategy(name, generation, family, description, hparams + (FT_WARMUP_FRAC,),
                    MappingProxyType(dict(defaults)), make_update, **fields)


_PAPER = (
    strategy_entry("fixed_sgd", "1", "sgd", "SGD, constant LR", SGD_HPARAMS,
                   {"lr": 0.01, **SGD_DEFAULTS}, sgd_update),
    strategy_entry("cosine_sgd", "2", "sgd", "SGD, per-step cosine from lr to 1e-5 over the run", SGD_HPARAMS,
                   {"lr": 0.03, **SGD_DEFAULTS}, sgd_update, make_schedule=_cosine),
    strategy_entry("sgdr", "2", "sgd", "SGD, cosine warm restarts to 1e-5 (T_0 in epochs)",
                   SGD_HPARAMS + (T_0_EPOCHS, T_MULT), {"lr": 0.05, "T_0_epochs": 10, "T_mult": 2, **SGD_DEFAULTS},
                   sgd_update, make_schedule=_sgdr),
    strategy_entry("adam", "3", "adam", "Adam", ADAM_HPARAMS, ADAM_DEFAULTS, _adam),
    strategy_entry("adamw", "3", "adam", "AdamW (decoupled weight decay)", ADAM_HPARAMS,
                   {**ADAM_DEFAULTS, "weight_decay": 0.01}, adamw_update),
    strategy_entry("adabound", "3", "adam", "AdaBound (pytorch-optimizer)", ADAM_HPARAMS + (FINAL_LR,),
                   {**ADAM_DEFAULTS, "final_lr": 0.01}, _adabound),
    strategy_entry("lars", "4", "sgd", "SGD with a per-tensor trust ratio c*||p||/||g+wd*p|| (no clamp)",
                   SGD_HPARAMS + (TRUST_COEF,), {"lr": 0.03, "trust_coef": 0.02, **SGD_DEFAULTS}, _lars),
    strategy_entry("discriminative", "4", "sgd", "SGD with discriminative decay 2.6 per layer group",
                   SGD_HPARAMS + (DECAY_FACTOR,), {"lr": 0.05, "decay_factor": 2.6, **SGD_DEFAULTS}, sgd_update,
                   discriminative=True),
    strategy_entry("radam", "5", "adam", "RAdam", ADAM_HPARAMS, ADAM_DEFAULTS, _radam),
    strategy_entry("lion", "5", "adam", "Lion (pytorch-optimizer)", ADAM_HPARAMS,
                   {"lr": 1e-4, "beta1": 0.9, "beta2": 0.99, "weight_decay": 0.01}, _lion),
    strategy_entry("lookahead_adamw", "5", "adam", "Lookahead (k 5, alpha 0.5) over AdamW (pytorch-optimizer)",
                   ADAM_HPARAMS + (LOOKAHEAD_K, LOOKAHEAD_ALPHA),
                   {**ADAM_DEFAULTS, "weight_decay": 0.01, "lookahead_k": 5, "lookahead_alpha": 0.5}, _lookahead_adamw),
    strategy_entry("sam", "5", "sgd", "Adaptive SAM (ASAM) over SGD (pytorch-optimizer)", SGD_HPARAMS + (RHO,),
                   {"lr": 0.03, "rho": 0.05, **SGD_DEFAULTS}, _sam, passes_per_step=2),
    strategy_entry("grokfast", "5", "sgd", "SGD on g + lam * EMA_alpha(g) (pytorch-optimizer gradfilter_ema)",
                   SGD_HPARAMS + (GROK_ALPHA, GROK_LAMBDA),
                   {"lr": 0.03, "grok_alpha": 0.98, "grok_lambda": 1.0, **SGD_DEFAULTS}, _grokfast),
    strategy_entry("stlr_discriminative", "5", "sgd", "SGD, discriminative decay 2.6 (once), per-step STLR",
                   SGD_HPARAMS + (DECAY_FACTOR, CUT_FRAC, RATIO),
                   {"lr": 0.05, "decay_factor": 2.6, "cut_frac": 0.1, "ratio": 32.0, **SGD_DEFAULTS}, sgd_update,
                   discriminative=True, make_schedule=_stlr),
    strategy_entry("sam_discriminative", "SOTA", "sgd", "ASAM over discriminative param groups",
                   SGD_HPARAMS + (DECAY_FACTOR, RHO), {"lr": 0.05, "decay_factor": 2.6, "rho": 0.05, **SGD_DEFAULTS},
                   _sam, discriminative=True, passes_per_step=2),
    strategy_entry("dals", "SOTA", "dals", "DALS: loss-phase Grokfast filter, depth blend, clamped trust ratio",
                   DALS_HPARAMS + (WARMUP_FRAC,), {**DALS_DEFAULTS, "warmup_frac": 0.05}, _dals,
                   make_schedule=_warmup_cosine),
    strategy_entry("dals_fast", "SOTA", "dals", "DALS-Fast: filter bypassed in phase 0, lr 0.05, mu 0.85",
                   DALS_HPARAMS + (WARMUP_FRAC,), {**DALS_DEFAULTS, "lr": 0.05, "momentum": 0.85, "warmup_frac": 0.02},
                   _dals_fast, make_schedule=_warmup_cosine),
    strategy_entry("dals_acc", "SOTA", "dals", "DALS-Acc: SGDR without warmup, stronger filter",
                   DALS_HPARAMS + (T_0_EPOCHS, T_MULT),
                   {**DALS_DEFAULTS, "weight_decay": 5e-4, "filter_alpha": 0.7, "th2": 0.001, "T_0_epochs": 10,
               "T_mult": 2}, _dals_acc, make_schedule=_restarts),
)

MODERN = "modern"
"""The generation of the six modern baselines: they are not the paper's, so ``paper`` never selects them."""

_STRATEGIES = _PAPER


# ----- paper-code variants (opt-in; README "Reproducing the paper") --------------------------------
# Named "<strategy>@paper_code": '@' is no glob metacharacter, so the name matches itself exactly in
# a spec or on the command line, and "*@paper_code" selects all 18 ("[paper_code]" would be read by
# fnmatch as a character class and never match its own name).

PAPER_CODE = "paper_code"
VARIANT_SEPARATOR = "@"


def _paper_lars(groups: list[dict], hp: dict[str, Any], run: Run) -> Update:
    from strategies import paper_code

    return paper_code.PaperLARS(groups, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"],
                                trust_coef=hp["trust_coef"])


def _paper_grokfast(groups: list[dict], hp: dict[str, Any], run: Run) -> Update:
    from strategies import paper_code

    return paper_code.PaperGrokfast(groups, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"],
                                    alpha=hp["grok_alpha"])


def _paper_cosine(hp: dict[str, Any], run: Run) -> Schedule:
    from strategies import paper_code

    return partial(paper_code.cosine_next, T=run.total_steps, eta_min=ETA_MIN)


def _paper_sgdr(hp: dict[str, Any], run: Run) -> Schedule:
    # T_0_epochs is read as a step count, as the reference's SGDRWithRestarts(T_0=10) does.
    from strategies import paper_code

    return partial(paper_code.sgdr_step_counter, T_0=hp["T_0_epochs"], T_mult=hp["T_mult"], eta_min=ETA_MIN)


def _paper_stlr(hp: dict[str, Any], run: Run) -> Schedule:
    from strategies import paper_code

    return partial(paper_code.stlr_epochwise_double, T=run.total_steps, steps_per_epoch=run.steps_per_epoch,
                   top_lr=hp["lr"], cut_frac=hp["cut_frac"], ratio=hp["ratio"])


_SAME = "same update as {base}: the reference code computes this rule on the synthetic MLP"
_NOT_REPRODUCED = {  # reference-code differences judged too small to reproduce (README lists them)
    "adamw": "decoupled decay applied after the Adam step, not before (order lr^2*wd per step)",
    "lion": "decoupled decay applied after the sign step, not before (order lr^2*wd per step)",
    "lookahead_adamw": "slow weights taken after the first step, not before it; AdamW as above",
    "dals": "depth from model.children(): on the MLP these are its 4 Linear layers, the same groups",
    "dals_fast": "depth from model.children(): on the MLP these are its 4 Linear layers, the same groups",
    "dals_acc": "depth from model.children(): on the MLP these are its 4 Linear layers, the same groups",
}
_PAPER_CHANGES: dict[str, tuple[str, dict[str, Any]]] = {
    "cosine_sgd": ("cosine counter one step ahead (update t uses position t+1)", {"make_schedule": _paper_cosine}),
    "sgdr": ("T_0 counted in steps, not epochs (a restart after 10, 30, 70, ... steps)",
             {"make_schedule": _paper_sgdr}),
    "lars": ("trust ratio applied to the momentum buffer (after momentum), eps 1e-8, c when a norm is 0",
             {"make_update": _paper_lars}),
    "grokfast": ("filter from zero, momentum dampened by 1-mu, decoupled weight decay after the update",
                 {"make_update": _paper_grokfast}),
    "stlr_discriminative": ("discriminative decay applied twice and STLR stepped once per epoch",
                            {"make_schedule": _paper_stlr}),
}


def _paper_variant(base: Strategy) -> Strategy:
    same = _SAME.format(base=base.name)
    if base.name in _NOT_REPRODUCED:
        same += f" (not reproduced: {_NOT_REPRODUCED[base.name]})"
    what, fields = _PAPER_CHANGES.get(base.name, (same, {}))
    return dataclasses.replace(base, name=f"{base.name}{VARIANT_SEPARATOR}{PAPER_CODE}",
                               description=f"paper code: {what}", variant_of=base.name, **fields)


_VARIANTS = tuple(_paper_variant(s) for s in _PAPER)
_BY_NAME = {strategy.name: strategy for strategy in _STRATEGIES + _VARIANTS}
FAMILIES = tuple(FINETUNE_LR)


def register_strategy(strategy: Strategy, *, replace: bool = False) -> Strategy:
    """Add ``strategy`` after the built-in ones (``replace=True`` to overwrite a name) and return it.

    A plugin's strategy is then tuned, re-evaluated and reported like a built-in one: its search
    space follows from its canonical settings by the width policy of ``search_spaces``.
    """
    if not isinstance(strategy, Strategy):
        raise TypeError(f"register_strategy expects a Strategy, got {type(strategy).__name__}")
    if strategy.family not in FAMILIES:
        raise StrategyError(f"strategy {strategy.name!r}: family {strategy.family!r}; valid: {', '.join(FAMILIES)}")
    if strategy.name in _BY_NAME and not replace:
        raise StrategyError(f"strategy {strategy.name!r} is already registered (pass replace=True)")
    if FT_WARMUP_FRAC not in strategy.hparams:  # the "finetune" regime sets it, as for every built-in
        strategy = dataclasses.replace(strategy, hparams=tuple(strategy.hparams) + (FT_WARMUP_FRAC,))
    _BY_NAME[strategy.name] = strategy
    return strategy


def get_strategy(name: str) -> Strategy:
    """The registered strategy or variant ``name``; ``StrategyError`` listing the valid names otherwise."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise StrategyError(f"unknown strategy {name!r}; valid: {', '.join(_BY_NAME)}") from None


PAPER_NAMES = tuple(s.name for s in _PAPER)
SELECTIONS = MappingProxyType({
    "paper": "the paper's 18",
    MODERN: "the six modern baselines",
    "all": "every registered strategy",
})
"""What a selection word picks, for ``list_strategies(selection=...)`` and a spec's ``strategies:``."""


def _selected(strategy: Strategy, selection: str) -> bool:
    if selection == "paper":
        return (strategy.variant_of or strategy.name) in PAPER_NAMES
    return selection == "all" or strategy.generation == selection


def list_strategies(pattern: str | None = None, *, selection: str = "all") -> list[Strategy]:
    """The registered strategies in order (the paper's 18 as in docs/STRATEGIES.md, the six modern ones, then
    a plugin's), those of ``selection`` (``SELECTIONS``), and of those the names matching the glob ``pattern``.

    Variants (``<name>@paper_code``) are opt-in: only a pattern containing ``@`` lists them, so
    ``all``, ``dals*`` or no pattern never do.
    """
    if selection not in SELECTIONS:
        raise StrategyError(f"unknown strategy selection {selection!r}; valid: {', '.join(SELECTIONS)}")
    variants = pattern is not None and VARIANT_SEPARATOR in pattern
    pool = [s for s in _BY_NAME.values() if (variants or s.variant_of is None) and _selected(s, selection)]
    return [s for s in pool if pattern is None or fnmatch.fnmatchcase(s.name, pattern)]
