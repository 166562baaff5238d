"""Registry-driven tests: every strategy builds, trains, checkpoints and rejects bad settings."""

import io
import math

import pytest
import torch
from torch import nn

from strategies import HParam, Stepper, Strategy, StrategyError, get_strategy, list_strategies, resolve_hparams
from strategies.schedules import stlr

NAMES = [strategy.name for strategy in list_strategies()]
STEPS_PER_EPOCH = 5



def make_problem(seed: int = 0):
    """A 3-layer MLP on a separable 3-class toy task; layer groups are its Linear layers."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    layers = [nn.Linear(8, 16), nn.Linear(16, 16), nn.Linear(16, 3)]
    model = nn.Sequential(layers[0], nn.ReLU(), layers[1], nn.ReLU(), layers[2])
    X = torch.randn(160, 8, generator=generator)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0).long()
    return model, [list(layer.parameters()) for layer in layers], X, y


def closure_for(model: nn.Module, X: torch.Tensor, y: torch.Tensor, step: int, batch: int = 32):
    """The training-loop closure for mini-batch ``step`` (batches cycle through the data)."""
    start = (step * batch) % len(X)
    xb, yb = X[start:start + batch], y[start:start + batch]

    def closure() -> torch.Tensor:
        model.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        return loss

    return closure


def full_loss(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return nn.functional.cross_entropy(model(X), y).item()


PAPER = ["fixed_sgd", "cosine_sgd", "sgdr", "adam", "adamw", "adabound", "lars", "discriminative", "radam",
         "lion", "lookahead_adamw", "sam", "grokfast", "stlr_discriminative", "sam_discriminative",
         "dals", "dals_fast", "dals_acc"]
MODERN = ["adamw_wsd", "onecycle_sgd", "muon", "soap", "schedulefree_adamw", "prodigy"]


def test_registry_lists_the_18_strategies_of_strategies_md_then_the_six_modern_ones():
    assert NAMES == PAPER + MODERN
    assert [s.name for s in list_strategies(selection="paper")] == PAPER
    assert [s.name for s in list_strategies(selection="modern")] == MODERN
    assert {get_strategy(name).generation for name in MODERN} == {"modern"}
    assert [s.name for s in list_strategies("dals*")] == ["dals", "dals_fast", "dals_acc"]
    assert [s.name for s in list_strategies("*adamw*", selection="paper")] == ["adamw", "lookahead_adamw"]
    assert list_strategies("no_such_*") == []
    with pytest.raises(StrategyError, match="unknown strategy selection 'new'; valid: paper, modern, all"):
        list_strategies(selection="new")


@pytest.mark.parametrize("name", NAMES)
def test_entry_is_frozen_and_canonical_is_valid_and_fresh(name):
    strategy = get_strategy(name)
    assert isinstance(strategy, Strategy)
    assert strategy.family in {"sgd", "adam", "dals"}
    assert strategy.generation in {"1", "2", "3", "4", "5", "SOTA", "modern"}
    with pytest.raises(AttributeError):
        strategy.name = "other"
    specs = {spec.name: spec for spec in strategy.hparams}
    for regime in ("scratch", "finetune"):
        config = strategy.canonical(regime)
        assert set(config) <= set(specs)
        assert all(specs[key].contains(value) for key, value in config.items()), config
        config["lr"] = -1.0  # a caller mutating its copy must not change the registry
        assert strategy.canonical(regime)["lr"] > 0


@pytest.mark.parametrize(("name", "lr"), [("adam", 2e-5), ("lion", 2e-5), ("lars", 1e-3), ("sam", 1e-3),
                                          ("stlr_discriminative", 1e-3), ("dals_acc", 1e-3),
                                          ("onecycle_sgd", 1e-3), ("muon", 2e-5), ("soap", 2e-5),
                                          ("adamw_wsd", 2e-5), ("schedulefree_adamw", 2e-5), ("prodigy", 1.0)])
def test_finetune_regime_sets_base_lr_and_warmup(name, lr):
    config = get_strategy(name).canonical("finetune")
    assert config["lr"] == lr
    assert config["ft_warmup_frac"] == 0.1
    assert "ft_warmup_frac" not in get_strategy(name).canonical("scratch")


def test_resolve_hparams_lays_workload_overrides_then_sampled_values_over_the_canonical_ones():
    sgd, dals = get_strategy("fixed_sgd"), get_strategy("dals")
    overrides = {"sgd": {"weight_decay": 5e-4, "not_mine": 1.0}}
    assert resolve_hparams(sgd, "scratch", overrides) == {**sgd.canonical(), "weight_decay": 5e-4}
    assert resolve_hparams(dals, "scratch", overrides) == dals.canonical(), "another family's overrides"
    tuned = resolve_hparams(sgd, "finetune", overrides, {"lr": 0.5, "weight_decay": 0.0})
    assert tuned == {**sgd.canonical("finetune"), "lr": 0.5, "weight_decay": 0.0}
    resolved = resolve_hparams(sgd, "finetune", overrides, {"lr": 0.5})
    assert resolve_hparams(sgd, "finetune", None, resolved) == resolved, "resolving a resolved dict changes nothing"
    with pytest.raises(StrategyError, match="'lr' = 0 is outside \\(0, 10\\]"):
        resolve_hparams(sgd, sampled={"lr": 0})
    with pytest.raises(StrategyError, match="unknown hyperparameter 'rho'"):
        resolve_hparams(sgd, sampled={"rho": 0.1})
    with pytest.raises(StrategyError, match="unknown regime 'pretrain'"):
        resolve_hparams(sgd, "pretrain")



def test_hyperparameter_resolution_imports_nothing_of_the_registry():
    """The registry imports ``strategies.hparams``, never the reverse (not even for type hints)."""
    import ast
    from pathlib import Path

    import strategies.hparams

    tree = ast.parse(Path(strategies.hparams.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {name for name in imported if name and name.startswith("strategies")}, imported

@pytest.mark.parametrize("name", NAMES)
def test_thirty_steps_lower_the_loss(name):
    model, groups, X, y = make_problem()
    stepper = get_strategy(name).build(groups, None, total_steps=30, steps_per_epoch=STEPS_PER_EPOCH)
    assert isinstance(stepper, Stepper)
    before = full_loss(model, X, y)
    for step in range(30):
        loss = stepper.step(closure_for(model, X, y, step))
        assert torch.is_tensor(loss) and torch.isfinite(loss)
    assert full_loss(model, X, y) < before
    lrs = stepper.lrs()
    groups = 4 if name == "muon" else 3  # Muon splits the hidden group: its matrix, its bias
    assert len(lrs) == groups and all(isinstance(lr, float) and lr >= 0 for lr in lrs)
    diagnostics = stepper.diagnostics()
    if get_strategy(name).family == "dals":
        assert set(diagnostics) == {"phase", "trust_ratio"}
        assert diagnostics["phase"] in (0.0, 1.0, 2.0) and 0.2 <= diagnostics["trust_ratio"] <= 5.0
    else:
        assert diagnostics == {}


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_continues_bit_identically(name):
    hparams = {"T_0_epochs": 1} if name in ("sgdr", "dals_acc") else {}  # a restart inside each half
    if name == "lookahead_adamw":
        hparams = {"lookahead_k": 3}  # a sync inside each half, and one pending at the checkpoint

    def build():
        model, groups, X, y = make_problem()
        return model, get_strategy(name).build(groups, hparams, 20, STEPS_PER_EPOCH), X, y

    model, stepper, X, y = build()
    for step in range(7):
        stepper.step(closure_for(model, X, y, step))
    with stepper.evaluating():  # as the loops do: score, then snapshot in train mode
        full_loss(model, X, y)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "stepper": stepper.state_dict()}, buffer)
    straight = [stepper.step(closure_for(model, X, y, step)).item() for step in range(7, 20)]

    restored_model, restored, _, _ = build()
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=False)
    restored_model.load_state_dict(checkpoint["model"])
    restored.load_state_dict(checkpoint["stepper"])
    resumed = [restored.step(closure_for(restored_model, X, y, step)).item() for step in range(7, 20)]

    assert resumed == straight
    for a, b in zip(model.parameters(), restored_model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert restored.lrs() == stepper.lrs()
    assert restored.diagnostics() == stepper.diagnostics()


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_loss_does_not_raise(name):
    model, groups, X, y = make_problem()
    stepper = get_strategy(name).build(groups, None, 10, STEPS_PER_EPOCH)

    def nan_closure() -> torch.Tensor:
        model.zero_grad()
        loss = nn.functional.cross_entropy(model(X), y) * float("nan")
        loss.backward()
        return loss

    for _ in range(2):
        assert math.isnan(stepper.step(nan_closure).item())
    stepper.lrs()
    stepper.diagnostics()


def test_discriminative_groups_scale_once_lowest_of_four_gets_top_over_2_6_cubed():
    layers = [nn.Linear(4, 4) for _ in range(4)]
    groups = [list(layer.parameters()) for layer in layers]
    stepper = get_strategy("discriminative").build(groups, {"lr": 0.05}, 100, 10)
    assert stepper.lrs() == pytest.approx([0.05 / 2.6**3, 0.05 / 2.6**2, 0.05 / 2.6, 0.05], rel=1e-12)


def test_stlr_discriminative_follows_stlr_per_step_in_every_group():
    layers = [nn.Linear(2, 2) for _ in range(4)]
    stepper = get_strategy("stlr_discriminative").build([list(x.parameters()) for x in layers], None, 100, 10)
    x = torch.randn(3, 2)

    def closure() -> torch.Tensor:
        for layer in layers:
            layer.zero_grad()
        loss = sum(layer(x).sum() for layer in layers)
        loss.backward()
        return loss

    for t in range(15):  # past the cut at t = 10, per step (not per epoch)
        stepper.step(closure)
        expected = [stlr(t, 0.05 / 2.6 ** (3 - layer), T=100, cut_frac=0.1, ratio=32.0) for layer in range(4)]
        assert stepper.lrs() == pytest.approx(expected, rel=1e-12)
    assert stepper.lrs()[0] == pytest.approx(stepper.lrs()[3] / 2.6**3, rel=1e-12)


@pytest.mark.parametrize("name", ["fixed_sgd", "cosine_sgd", "dals"])
def test_finetune_warmup_multiplies_the_strategy_schedule(name):
    model, groups, X, y = make_problem()
    strategy = get_strategy(name)
    scratch = strategy.build(make_problem()[1], {"lr": 1e-3}, 100, 10)
    finetune = strategy.build(groups, None, 100, 10, regime="finetune")
    scratch_model = make_problem()[0]
    for t in range(12):
        finetune.step(closure_for(model, X, y, t))
        scratch.step(closure_for(scratch_model, X, y, t))
        warmup = t / 10 if t < 10 else 1.0
        assert finetune.lrs() == pytest.approx([lr * warmup for lr in scratch.lrs()], rel=1e-12, abs=1e-15)


def test_unknown_strategy_lists_valid_names():
    with pytest.raises(StrategyError, match="unknown strategy 'dalz'.*fixed_sgd.*dals_acc"):
        get_strategy("dalz")
    assert issubclass(StrategyError, ValueError)


@pytest.mark.parametrize(
    ("name", "hparams", "message"),
    [
        ("dals", {"lrr": 0.1}, r"'dals': unknown hyperparameter 'lrr'; valid: lr, momentum"),
        ("adam", {"momentum": 0.9}, r"'adam': unknown hyperparameter 'momentum'"),
        ("fixed_sgd", {"lr": 0.0}, r"'fixed_sgd': hyperparameter 'lr' = 0.0 is outside \(0, 10\]"),
        ("sgd" + "r", {"T_0_epochs": 2.5}, r"'sgdr': hyperparameter 'T_0_epochs' = 2.5 is outside \[1, 1000\] int"),
        ("dals", {"momentum": 1.0}, r"'dals': hyperparameter 'momentum' = 1.0 is outside \[0, 1\)"),
        ("sam", {"rho": True}, r"'sam': hyperparameter 'rho' = True"),
        ("lion", {"beta2": float("nan")}, r"'lion': hyperparameter 'beta2' = nan"),
        ("muon", {"adam_lr": 0.0}, r"'muon': hyperparameter 'adam_lr' = 0.0 is outside \(0, 10\]"),
        ("soap", {"precondition_frequency": 0}, r"'soap': hyperparameter 'precondition_frequency' = 0 is outside "
                                                r"\[1, 1000\] int"),
        ("prodigy", {"lr": 20.0}, r"'prodigy': hyperparameter 'lr' = 20.0 is outside \(0, 10\]"),
        ("schedulefree_adamw", {"warmup_frac": 1.0}, r"'warmup_frac' = 1.0 is outside \[0, 1\)"),
        ("onecycle_sgd", {"momentum": -0.1}, r"'onecycle_sgd': hyperparameter 'momentum' = -0.1"),
        ("adamw_wsd", {"warmup_frac": 0.9}, r"'warmup_frac' \+ 'decay_frac' = 0.9 \+ 0.2 exceed the run; "
                                            r"allowed: a sum <= 1"),
    ],
)
def test_bad_hyperparameters_name_strategy_field_and_range(name, hparams, message):
    with pytest.raises(StrategyError, match=message):
        get_strategy(name).build(make_problem()[1], hparams, 10, 2)


def test_bad_build_arguments_raise_strategy_error():
    strategy = get_strategy("fixed_sgd")
    groups = make_problem()[1]
    with pytest.raises(StrategyError, match="total_steps = 0"):
        strategy.build(groups, None, 0, 2)
    with pytest.raises(StrategyError, match="unknown regime 'pretrain'"):
        strategy.build(groups, None, 10, 2, regime="pretrain")
    with pytest.raises(StrategyError, match="appears twice"):
        strategy.build([groups[0], groups[0]], None, 10, 2)
    with pytest.raises(StrategyError, match="layer group 1 is empty"):
        strategy.build([groups[0], []], None, 10, 2)


def test_int_hyperparameters_accept_integral_floats():
    config = resolve_hparams(get_strategy("sgdr"), sampled={"T_0_epochs": 3.0, "T_mult": 1})
    assert config["T_0_epochs"] == 3 and isinstance(config["T_0_epochs"], int)
    assert HParam("k", 1, 5, kind="int").describe() == "[1, 5] int"


def test_the_stepper_scores_at_the_updates_evaluation_point_and_trains_on_after():
    """An update with eval()/train() (Schedule-Free) is switched for the evaluation, back afterwards."""
    from strategies import schedules

    calls = []

    class Averaging(torch.optim.SGD):
        def eval(self):
            calls.append("eval")

        def train(self):
            calls.append("train")

    w = torch.nn.Parameter(torch.ones(2))
    stepper = Stepper(Averaging([w], lr=0.1), schedules.constant)
    with stepper.evaluating():
        calls.append("score")
    assert calls == ["eval", "score", "train"]
    plain = Stepper(torch.optim.SGD([w], lr=0.1), schedules.constant)
    with plain.evaluating():  # no eval/train: nothing to switch
        pass
