"""The six modern baselines: WSD and one-cycle against their formulas, Muon's split on every built-in
workload, Schedule-Free scored at its average and resumed exactly, and populations falling back."""

import io
import math
from functools import partial

import pytest
import torch
from offline_data import write_text_model
from pytorch_optimizer.lr_scheduler.wsd import get_wsd_scheduler_lambda

from strategies import get_strategy, list_strategies
from strategies.modern import muon_split
from strategies.param_groups import build_param_groups
from strategies.schedules import one_cycle, wsd
from strategies.stacked import has_stacked_form
from trainables import get_workload, list_workloads, run_trial
from trainables.population import run_population
from trainables.workload import Data
from vocab.contracts import TIMINGS

T = 1000


def test_wsd_warms_up_holds_then_cools_down_by_one_minus_sqrt_over_the_last_fifth():
    factor = partial(wsd, T=T, warmup_frac=0.05, decay_frac=0.2)  # W = 50, cooldown from step 800
    assert [factor(t) for t in (0, 25, 50, 400, 799, 800)] == [0.0, 0.5, 1.0, 1.0, 1.0, 1.0]
    assert factor(850) == pytest.approx(1 - math.sqrt(50 / 200), rel=1e-12)  # a quarter in: 1 - 1/2
    assert factor(950) == pytest.approx(1 - math.sqrt(150 / 200), rel=1e-12)
    assert factor(999) == pytest.approx(1 - math.sqrt(199 / 200), rel=1e-12)
    assert factor(T) == 0.0
    library = partial(get_wsd_scheduler_lambda, num_warmup_steps=50, num_stable_steps=750, num_decay_steps=200,
                      min_lr_ratio=0.0, num_cycles=0.5, cooldown_type="1-sqrt")
    assert all(factor(t) == pytest.approx(library(t), rel=1e-12, abs=1e-15) for t in range(T + 1))
    assert wsd(T, T=T, warmup_frac=0.0, decay_frac=0.0) == 1.0  # no cooldown: constant to the end


def test_one_cycle_rises_from_lr_over_25_to_lr_then_falls_to_lr_over_25e4():
    factor = partial(one_cycle, T=T, warmup_frac=0.3, div_factor=25.0, final_div_factor=1e4)
    start, low = 1 / 25, 1 / 25e4
    assert factor(0) == pytest.approx(start, rel=1e-12)
    assert factor(299) == pytest.approx(1.0, rel=1e-12)  # the top: step 0.3 * T - 1
    assert factor(149) == pytest.approx(1 + (start - 1) * 0.5 * (1 + math.cos(math.pi * 149 / 299)), rel=1e-12)
    assert factor(649) == pytest.approx(low + (1 - low) * 0.5 * (1 + math.cos(math.pi * 350 / 700)), rel=1e-12)
    assert factor(999) == pytest.approx(low, rel=1e-12)
    # torch's OneCycleLR (momentum not cycled: the Stepper schedules the LR only) gives the same LRs
    w = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([w], lr=0.1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=T, cycle_momentum=False)
    for t in range(T):
        assert 0.1 * factor(t) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-9)
        optimizer.step()
        if t < T - 1:
            scheduler.step()


@pytest.mark.parametrize(("name", "factor"), [
    ("adamw_wsd", partial(wsd, T=40, warmup_frac=0.05, decay_frac=0.2)),
    ("onecycle_sgd", partial(one_cycle, T=40, warmup_frac=0.3, div_factor=25.0, final_div_factor=1e4)),
])
def test_the_stepper_follows_the_schedule_at_the_canonical_peak(name, factor):
    w = torch.nn.Parameter(torch.ones(3))
    stepper = get_strategy(name).build([[w]], None, total_steps=40, steps_per_epoch=4)
    peak = get_strategy(name).canonical()["lr"]

    def closure() -> torch.Tensor:
        w.grad = None
        loss = (w * w).sum()
        loss.backward()
        return loss

    for t in range(40):
        stepper.step(closure)
        assert stepper.lrs() == [pytest.approx(peak * factor(t), rel=1e-12, abs=1e-18)]


# --- Muon's split -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    return str(write_text_model(tmp_path_factory.mktemp("distilbert"), "distilbert"))


BLOCK_MATRICES = [(16, 16)] * 4 + [(32, 16), (16, 32)]  # q, k, v, out; ffn in and out (dim 16, hidden 32)
MUON_SHAPES = {
    "synthetic": [(128, 128), (128, 128)],  # 64-128-128-128-10: the two hidden Linear weights
    "cifar10": [(64, 32, 3, 3), (128, 64, 3, 3)],  # blocks 2 and 3; block 1 is the input, the FCs the head
    "text": BLOCK_MATRICES * 2,  # both blocks; embeddings, norms, biases, pre-classifier and classifier: AdamW
}


@pytest.mark.parametrize("workload", [w.name for w in list_workloads()])
def test_muon_orthogonalises_the_hidden_matrices_of_every_built_in_workload_and_adamw_takes_the_rest(
        workload, text_model):
    spec = get_workload(workload)
    options = spec.validate_options({"model": text_model} if spec.regime == "finetune" else {})
    torch.manual_seed(0)
    model = spec.build_model(options, Data(None, None, 2))
    layer_groups = spec.layer_groups(model)
    split = muon_split(build_param_groups(layer_groups))
    matrices = [p for orthogonal, _ in split for p in orthogonal]
    expected = MUON_SHAPES.get(workload, MUON_SHAPES["text"])
    assert [tuple(p.shape) for p in matrices] == expected
    assert split[0][0] == [] and split[-1][0] == []  # input and head groups: AdamW only
    rest = {id(p) for _, adam in split for p in adam}
    assert {id(p) for p in model.parameters()} == rest | {id(p) for p in matrices} and not rest & set(map(id, matrices))
    # the optimizer the strategy builds has exactly these in its Muon groups, for either regime
    for regime in ("scratch", "finetune"):
        stepper = get_strategy("muon").build(layer_groups, None, 10, 2, regime=regime)
        muon_groups = [g for g in stepper.update.param_groups if g["use_muon"]]
        assert [id(p) for g in muon_groups for p in g["params"]] == [id(p) for p in matrices]
        assert {g["use_adjusted_lr"] for g in muon_groups} == {regime == "finetune"}
        adam_lrs = {g["lr"] for g in stepper.update.param_groups if not g["use_muon"]}
        assert adam_lrs == ({3e-4} if regime == "scratch" else {0.0})  # fine-tuning starts its warmup at 0
    assert get_strategy("muon").canonical("finetune")["adam_lr"] == 2e-5


# --- Schedule-Free: scored at the average, resumed exactly -----------------------------------------

SMALL = {"workload": "synthetic", "workload_options": {"n_train": 320}, "strategy": "schedulefree_adamw",
         "seed": 3, "epochs": 2, "hparams": {"lr": 0.02}}


def without_time(history):
    return [{k: v for k, v in m.items() if k not in TIMINGS} for m in history]


def test_schedulefree_reports_the_accuracy_of_its_average_not_of_its_gradient_point():
    snapshots = []
    history = run_trial(SMALL, on_epoch=lambda metrics, progress: snapshots.append(
        torch.load(io.BytesIO(_saved(progress.snapshot())), weights_only=False)))
    workload = get_workload("synthetic")
    options = workload.validate_options(SMALL["workload_options"])
    scored = workload.stage_data(options, "tune", None).eval
    model = workload.build_model(options, None)
    stepper = get_strategy("schedulefree_adamw").build(workload.layer_groups(model), SMALL["hparams"], 10, 5)

    def accuracy() -> float:
        with torch.no_grad():
            logits = model(scored.batch(torch.arange(len(scored)), False, torch.Generator()))
        return (logits.argmax(dim=1) == scored.labels).sum().item() / len(scored)

    for metrics, snapshot in zip(history, snapshots, strict=True):
        [member] = snapshot["members"]  # a trial of one run: a population of one
        model.load_state_dict(member["model"])  # the gradient point y: the snapshot is taken in train mode
        stepper.load_state_dict(member["stepper"])
        at_y = accuracy()
        with stepper.evaluating():
            at_x = accuracy()
        assert metrics["val_accuracy"] == pytest.approx(at_x, abs=1e-9)
        assert at_x != pytest.approx(at_y, abs=1e-3), "x and y must differ for this test to tell them apart"


def _saved(state) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["schedulefree_adamw", "soap"])
def test_a_resumed_trial_ends_like_an_uninterrupted_one(name):
    config = {**SMALL, "strategy": name, "epochs": 3, "hparams": {}}
    saved = {}

    def keep_epoch_1(metrics, progress):
        if progress.epoch == 1:
            saved["state"] = _saved(progress.snapshot())

    uninterrupted = run_trial(config, on_epoch=keep_epoch_1)
    resumed = run_trial(config, resume=torch.load(io.BytesIO(saved["state"]), weights_only=False))
    assert without_time(resumed) == without_time(uninterrupted)


# --- populations ----------------------------------------------------------------------------------

def test_only_wsd_and_one_cycle_have_a_stacked_form():
    stacked = [s.name for s in list_strategies(selection="modern") if has_stacked_form(s)]
    assert stacked == ["adamw_wsd", "onecycle_sgd"]  # torch's AdamW and SGD under a new schedule


@pytest.mark.parametrize("name", ["muon", "soap", "schedulefree_adamw", "prodigy"])
def test_a_population_without_a_stacked_form_trains_each_member_as_alone(name):
    cfgs = [{"workload": "synthetic", "workload_options": {"n_train": 128}, "strategy": name, "seed": seed,
             "hparams": hparams, "epochs": 2, "stage": "seed"} for seed, hparams in ((0, {}), (1, {"lr": 0.5e-2}))]
    population, alone = run_population(cfgs), [run_trial(c) for c in cfgs]
    assert [without_time(h) for h in population] == [without_time(h) for h in alone]
