"""Population trials: every member's history equals the same run trained alone with run_trial.

Both update paths are held to it: the stacked update of all members (strategies/stacked.py, the
default for every built-in strategy) and each member's own Stepper (``stacked=False``, and the
automatic fallback for an update without a stacked form). On the CPU both come out bit-identical to
the solo runs; the abs 1e-5 below is the module's allowance for the GPU's grouped convolutions.
"""

import dataclasses
import io

import pytest
import torch
from offline_data import write_cifar10
from torch import nn

from strategies import get_strategy, list_strategies, registry
from strategies.stacked import has_stacked_form
from trainables import Workload, get_workload, register_workload, run_trial
from trainables import population as population_module
from trainables.forward import grouped_conv_pays, has_conv, stackable
from trainables.population import PopulationError, _Population, run_population
from trainables.trial import TrialConfig
from trainables.workloads import synthetic
from trainables.workloads.cifar10 import ConvNet
from vocab.contracts import TIMINGS

SYNTHETIC_OPTIONS = get_workload("synthetic").options

SMALL = {"n_train": 256}


def _members(workload, strategy, options, seeds_hparams, epochs=2, **extra):
    return [{"workload": workload, "workload_options": options, "strategy": strategy, "seed": seed,
             "hparams": hparams, "epochs": epochs, "stage": "seed", **extra} for seed, hparams in seeds_hparams]


def _assert_same_history(population, alone, rel=None):
    """Equal histories: metrics to abs 1e-5, everything else exactly, the per-layer lists too unless
    ``rel`` is given, when they agree to that relative tolerance."""
    assert len(population) == len(alone)
    for got, want in zip(population, alone, strict=True):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert set(g) == set(w)
            for key, value in w.items():
                if key in TIMINGS:
                    continue
                if isinstance(value, float):
                    assert g[key] == pytest.approx(value, abs=1e-5), key
                elif rel is not None and key == "layers":
                    assert set(g[key]) == set(value)
                    for name, values in value.items():
                        assert g[key][name] == pytest.approx(values, rel=rel), (key, name)
                else:
                    assert g[key] == value, key


STACKED = [s.name for s in list_strategies() if has_stacked_form(s)]  # the rest: tests/test_strategies_modern.py


@pytest.mark.parametrize("stacked", [None, False], ids=["stacked_update", "member_steppers"])
@pytest.mark.parametrize("strategy", STACKED)
def test_every_strategy_trains_each_member_as_alone_on_the_mlp(strategy, stacked):
    # Two seeds of the canonical config and a third member with another LR: members differ in both.
    lr = {"lr": 0.02} if strategy != "adam" else {"lr": 1e-3}
    cfgs = _members("synthetic", strategy, SMALL, [(0, {}), (1, {}), (2, lr)])
    _assert_same_history(run_population(cfgs, stacked=stacked), [run_trial(c) for c in cfgs])


def _engine(cfgs, **kwargs):
    return _Population([TrialConfig.from_dict(c) for c in cfgs], **kwargs).engine


def test_every_built_in_strategy_takes_the_stacked_update_unless_told_not_to():
    for strategy in map(get_strategy, STACKED):
        cfgs = _members("synthetic", strategy.name, {"n_train": 64}, [(0, {}), (1, {})], epochs=1)
        assert _engine(cfgs) is not None, strategy.name
    assert _engine(cfgs, stacked=False) is None


@pytest.fixture
def plugin_strategy(monkeypatch):
    """A plugin's strategy with its own update (no stacked form), registered for this test only."""
    def own_update(groups, hp, run):
        return torch.optim.SGD(groups, lr=hp["lr"], momentum=hp["momentum"], nesterov=True)

    strategy = dataclasses.replace(get_strategy("fixed_sgd"), name="nesterov_test", make_update=own_update)
    monkeypatch.setitem(registry._BY_NAME, strategy.name, strategy)
    return strategy.name


def test_a_plugin_update_without_a_stacked_form_falls_back_to_the_members_steppers(plugin_strategy):
    cfgs = _members("synthetic", plugin_strategy, SMALL, [(0, {}), (1, {"lr": 0.02})])
    assert _engine(cfgs) is None
    _assert_same_history(run_population(cfgs), [run_trial(c) for c in cfgs])
    with pytest.raises(PopulationError, match="has no stacked update"):
        run_population(cfgs, stacked=True)


def test_the_stacked_update_counts_each_members_passes_and_a_share_of_its_time():
    cfgs = _members("synthetic", "sam", SMALL, [(0, {}), (1, {})], epochs=1)
    for metrics in (history[0] for history in run_population(cfgs)):
        assert metrics["grad_evals"] == 2 * 4  # 256 rows in batches of 64, two passes per SAM step
        assert 0.0 < metrics["step_seconds"] < metrics["seconds"]


def test_one_member_is_the_plain_trial():
    cfg = _members("synthetic", "dals", SMALL, [(3, {})])
    _assert_same_history(run_population(cfg), [run_trial(cfg[0])])


@pytest.mark.parametrize("strategy", ["fixed_sgd", "sam", "dals", "lookahead_adamw"])
def test_convnet_members_train_as_alone(strategy, tmp_path):
    root = write_cifar10(tmp_path, per_batch=32, n_test=40)
    options = {"verify_checksums": False, "val_size": 50}
    cfgs = _members("cifar10", strategy, options, [(0, {}), (1, {})], data_dir=str(root))
    assert stackable(ConvNet())
    _assert_same_history(run_population(cfgs), [run_trial(c) for c in cfgs])


def test_the_grouped_layout_is_timed_against_per_member_convolutions_on_copies_of_the_stack():
    template = ConvNet()
    gen = torch.Generator().manual_seed(0)
    params = {n: (torch.randn((2, *p.shape), generator=gen) * 0.05).requires_grad_()
              for n, p in template.named_parameters()}
    grouped, seconds = grouped_conv_pays(template, params, torch.randn((2, 4, 3, 32, 32), generator=gen), repeats=1)
    assert set(seconds) == {False, True} and all(s > 0 for s in seconds.values())
    assert grouped == (seconds[True] < seconds[False])
    assert all(p.grad is None for p in params.values())  # the population's own gradients stay as they are
    assert has_conv(template) and not has_conv(get_workload("synthetic").build_model(
        get_workload("synthetic").validate_options({}), None))


def test_on_the_cpu_a_convnet_population_takes_per_member_convolutions_untimed(tmp_path, monkeypatch):
    def timed(*args, **kwargs):
        raise AssertionError("a CPU population timed its convolution layouts")

    monkeypatch.setattr(population_module, "grouped_conv_pays", timed)
    root = write_cifar10(tmp_path, per_batch=32, n_test=40)
    cfgs = [TrialConfig.from_dict(c) for c in _members(
        "cifar10", "fixed_sgd", {"verify_checksums": False, "val_size": 50}, [(0, {}), (1, {})], data_dir=str(root))]
    assert _Population(cfgs).forward.grouped is False
    assert _Population(cfgs, grouped_conv=True).forward.grouped is True


def test_a_diverged_member_is_frozen_and_the_others_go_on():
    cfgs = _members("synthetic", "fixed_sgd", SMALL, [(0, {"lr": 9.0, "momentum": 0.99}), (1, {})], epochs=5)
    population = run_population(cfgs)
    alone = [run_trial(c) for c in cfgs]
    assert alone[0][-1]["status"] == "diverged" and len(alone[0]) < 5
    assert [h["status"] for h in alone[1]] == ["ok"] * 5
    _assert_same_history(population, alone)


def test_a_model_that_is_not_sequential_runs_through_vmap(tmp_path):
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(64, 32), nn.Linear(32, 10)

        def forward(self, x):
            return self.b(torch.tanh(self.a(x)))

    register_workload(Workload(
        name="branchy_test", description="a model with its own forward", regime="scratch", default_epochs=2,
        batch_size=64, load_data=synthetic.load_data, build_model=lambda options, data: Branchy(),
        layer_groups=lambda m: [list(m.a.parameters()), list(m.b.parameters())], options=SYNTHETIC_OPTIONS,
    ), replace=True)
    assert not stackable(Branchy())
    cfgs = _members("branchy_test", "adam", SMALL, [(0, {}), (1, {})])
    # vmap's batched backward may take another BLAS kernel than the member's own (CPU by CPU), so
    # its per-layer norms agree to rounding, not bit for bit (trainables/population.py).
    _assert_same_history(run_population(cfgs), [run_trial(c) for c in cfgs], rel=1e-5)


def test_members_must_share_everything_but_hparams_and_seed():
    a = _members("synthetic", "adam", SMALL, [(0, {})])[0]
    with pytest.raises(PopulationError, match="must share 'strategy'"):
        run_population([a, {**a, "strategy": "adamw"}])
    with pytest.raises(PopulationError, match="must share 'epochs'"):
        run_population([a, {**a, "epochs": 3}])
    with pytest.raises(PopulationError, match="at least one member"):
        run_population([])
    paper = {**a, "rng_order": "paper"}
    with pytest.raises(PopulationError, match="rng_order 'paper' cannot train as a population"):
        run_population([paper, {**paper, "seed": 1}])


def test_members_of_a_model_with_buffers_and_dropout_run_alone_each_on_its_own_rng_stream():
    """BatchNorm's running statistics are per module, so these members take the solo path, one after
    another; each keeps torch's global RNG where it left it, so its dropout masks are its solo run's."""
    register_workload(Workload(
        name="batchnorm_test", description="a model with buffers", regime="scratch", default_epochs=1,
        batch_size=64, load_data=synthetic.load_data,
        build_model=lambda options, data: nn.Sequential(nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                                        nn.Dropout(0.3), nn.Linear(16, 10)),
        layer_groups=lambda m: [list(m.parameters())], options=SYNTHETIC_OPTIONS,
    ), replace=True)
    cfgs = _members("batchnorm_test", "adam", SMALL, [(0, {}), (1, {}), (2, {"lr": 3e-3})], epochs=2)
    assert _Population([TrialConfig.from_dict(c) for c in cfgs]).path == "solo"
    with pytest.raises(PopulationError, match="run alone"):
        run_population(cfgs, stacked=True)
    together = run_population(cfgs)
    _assert_same_history(together, [run_trial(c) for c in cfgs])
    assert together[0] != together[1]


def test_a_population_resumed_from_its_snapshot_ends_as_one_never_interrupted():
    cfgs = _members("synthetic", "dals", SMALL, [(0, {}), (1, {}), (2, {"lr": 0.05})], epochs=3)
    snapshots = {}

    def keep(metrics, progress):
        if progress.epoch == 1:  # serialised as the Ray trainable does, so live tensors cannot leak
            buffer = io.BytesIO()
            torch.save(progress.snapshot(), buffer)
            snapshots[1] = buffer.getvalue()

    whole = run_population(cfgs, on_epoch=keep)
    resumed = run_population(cfgs, resume=torch.load(io.BytesIO(snapshots[1]), weights_only=False))
    drop = lambda h: [{k: v for k, v in e.items() if k not in TIMINGS} for e in h]  # noqa: E731
    assert [drop(h) for h in resumed] == [drop(h) for h in whole]  # exactly, not approximately
    assert [len(h) for h in resumed] == [3, 3, 3]


@pytest.mark.parametrize("strategy", ["sam", "lookahead_adamw"])
def test_a_snapshot_resumes_on_the_update_path_it_was_taken_on(strategy):
    cfgs = _members("synthetic", strategy, SMALL, [(0, {}), (1, {})], epochs=3)
    drop = lambda h: [{k: v for k, v in e.items() if k not in TIMINGS} for e in h]  # noqa: E731
    for taken_on in (None, False):
        snapshots = []

        def keep(metrics, progress, snapshots=snapshots):
            if progress.epoch == 1:
                buffer = io.BytesIO()
                torch.save(progress.snapshot(), buffer)
                snapshots.append(buffer.getvalue())

        whole = run_population(cfgs, on_epoch=keep, stacked=taken_on)
        state = torch.load(io.BytesIO(snapshots[0]), weights_only=False)
        assert (state["engine"] is None) == (taken_on is False)
        resumed = run_population(cfgs, resume=state)  # the default path: it follows the snapshot
        assert [drop(h) for h in resumed] == [drop(h) for h in whole]


def test_resume_state_of_another_population_size_is_refused():
    cfgs = _members("synthetic", "fixed_sgd", SMALL, [(0, {}), (1, {}), (2, {})], epochs=1)
    states = []
    run_population(cfgs[:2], on_epoch=lambda metrics, progress: states.append(progress.snapshot()))
    with pytest.raises(PopulationError, match="2 members, the population 3"):
        run_population(cfgs, resume=states[0])


@pytest.mark.parametrize("bias", [True, False])
def test_a_linear_relu_chain_without_autograd_gives_autograds_losses_and_gradients_bit_for_bit(bias):
    """Stacked.train_step (the MLP's pass without a graph) against __call__ + member_losses + backward,
    with one member not running (its rows weigh nothing) and a last batch of another size."""
    from trainables.forward import Stacked, member_losses

    torch.manual_seed(0)
    template = nn.Sequential(nn.Linear(6, 5, bias=bias), nn.ReLU(), nn.Linear(5, 5, bias=bias), nn.ReLU(),
                             nn.Linear(5, 3, bias=bias))
    forward = Stacked(template, 4, grouped=False)
    assert forward.chain
    params = {n: torch.randn(4, *p.shape).requires_grad_(True) for n, p in template.named_parameters()}
    for batch in (7, 3):
        x, labels, running = torch.randn(4, batch, 6), torch.randint(0, 3, (4, batch)), [0, 2, 3]
        values, objective = member_losses(forward(params, x), labels, running)
        objective.backward()
        losses, logits, grads = forward.train_step(params, x, labels, running)
        assert torch.equal(losses, values.detach()) and torch.equal(logits, forward(params, x).detach())
        assert set(grads) == set(params)
        for name, p in params.items():
            assert torch.equal(grads[name], p.grad), name
            assert not grads[name][1].any()  # the member not running gets no gradient
            p.grad = None
