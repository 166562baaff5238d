"""Search spaces, driven by the strategy registry (docs/STYLE.md 9): every space holds its canonical point,
every suggestion is accepted by the strategy's Stepper, and the table is derived by one policy."""

import math

import optuna
import pytest
import torch
from torch import nn

import search_spaces as ss
from strategies import list_strategies
from sweeps.spec import catalog

STRATEGIES = [s.name for s in list_strategies()]
# (workload, options): the synthetic workload is the scratch regime; trec6 (a text workload) the
# fine-tune regime, whose canonical LR (2e-5 / 1e-3) the spaces must be centred on.
REGIMES = {"scratch": ("synthetic", {}), "finetune": ("trec6", {})}


def tiny_groups() -> tuple[list[list[nn.Parameter]], nn.Module]:
    torch.manual_seed(0)
    layers = [nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 3)]
    return [list(layer.parameters()) for layer in layers], nn.Sequential(layers[0], nn.ReLU(), layers[1],
                                                                          nn.ReLU(), layers[2])


def one_step(strategy, hparams: dict, regime: str) -> float:
    """Build the strategy's Stepper with ``hparams`` on a tiny MLP and take one step."""
    groups, model = tiny_groups()
    stepper = strategy.build(groups, hparams, total_steps=20, steps_per_epoch=5, regime=regime)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))

    def closure():
        for group in groups:
            for p in group:
                p.grad = None
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    return float(stepper.step(closure).detach())


@pytest.mark.parametrize("regime", sorted(REGIMES))
@pytest.mark.parametrize("name", STRATEGIES)
def test_space_contains_canonical_and_every_suggestion_builds(name, regime):
    from strategies import get_strategy

    workload, options = REGIMES[regime]
    strategy = get_strategy(name)
    canonical = catalog.resolved_canonical(workload, options, name)
    space = catalog.space(workload, options, name)
    assert "lr" in space and space["lr"].scale == "log"
    assert space["lr"].low <= canonical["lr"] / 10 * 1.0001 and space["lr"].high >= canonical["lr"] * 9.999
    point = catalog.canonical_point(workload, options, name)
    assert point == {k: canonical[k] for k in space}
    allowed = {h.name: h for h in strategy.hparams}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    study.enqueue_trial(point)
    suggest = ss.define_by_run(space)
    for i in range(4):
        trial = study.ask()
        hparams = suggest(trial)
        if i == 0:
            assert hparams == point, "trial 0 is the canonical configuration"
        for k, v in hparams.items():
            assert space[k].contains(v) and allowed[k].contains(v), (k, v)
        assert math.isfinite(one_step(strategy, hparams, regime))
        study.tell(trial, 0.5)
    # the edges of every range are accepted too
    for edge in ("low", "high"):
        hparams = {k: (int if r.scale == "int" else float)(getattr(r, edge)) for k, r in space.items()}
        strategy.build(tiny_groups()[0], hparams, total_steps=20, steps_per_epoch=5, regime=regime)


def test_one_width_policy_names_every_searched_knob():
    for name in STRATEGIES:
        for hparam in catalog.default_space("synthetic", {}, name):
            assert hparam in ss.POLICY
    # a strategy without weight decay is not searched over it; one with it is, a decade each side
    assert "weight_decay" not in catalog.default_space("synthetic", {}, "adam")
    wd = catalog.default_space("synthetic", {}, "adamw")["weight_decay"]
    assert wd.scale == "log" and wd.low == pytest.approx(1e-3) and wd.high == pytest.approx(1e-1)
    # DALS thresholds never cross, whatever is drawn
    dals = catalog.default_space("synthetic", {}, "dals")
    assert dals["th2"].high < dals["th1"].low


@pytest.mark.parametrize("name", ["sgdr", "dals_acc"])
def test_cyclic_schedules_search_their_restart_period_and_multiplier(name):
    # T_0 = 10 epochs and T_mult = 2 end an 80-epoch run 10 epochs into a 40-epoch cycle: the tuner
    # may change both, from half to twice the canonical value; trial 0 keeps the paper's.
    space = catalog.default_space("synthetic", {}, name)
    assert (space["T_0_epochs"].low, space["T_0_epochs"].high, space["T_0_epochs"].scale) == (5, 20, "int")
    assert (space["T_mult"].low, space["T_mult"].high, space["T_mult"].scale) == (1, 4, "int")
    point = catalog.canonical_point("synthetic", {}, name)
    assert (point["T_0_epochs"], point["T_mult"]) == (10, 2)


def test_narrow_replaces_a_range_and_refuses_unknown_hparams():
    space = catalog.default_space("synthetic", {}, "dals")
    narrowed = ss.narrow(space, {"lr": (0.01, 0.05)})
    assert (narrowed["lr"].low, narrowed["lr"].high, narrowed["lr"].scale) == (0.01, 0.05, "log")
    with pytest.raises(ss.SearchSpaceError, match="not searched"):
        ss.narrow(space, {"rho": (0.01, 0.1)})


def test_define_by_run_only_suggests_in_table_order():
    space = {"lr": ss.Range(1e-3, 1e-1, "log"), "k": ss.Range(2, 8, "int"), "m": ss.Range(0.5, 0.9, "linear")}
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)).ask()
    values = ss.define_by_run(space)(trial)
    assert list(values) == ["lr", "k", "m"] and isinstance(values["k"], int)
    dists = trial.distributions
    assert dists["lr"].log and not dists["m"].log


def test_markdown_table_lists_every_strategy():
    table = catalog.strategy_markdown()
    for name in STRATEGIES:
        assert f"| `{name}` | `lr` |" in table
    assert table.splitlines()[0].startswith("| strategy | hparam | canonical |")
