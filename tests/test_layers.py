"""Per-layer diagnostics: hand-computed norms for one SGD step, the trust ratios the strategies use,
and the values a run reports."""

import math

import pytest
import torch

from trainables import run_trial
from trainables.layers import LayerProbe


def test_the_probe_measures_one_step_as_computed_by_hand():
    w1 = torch.tensor([3.0, 4.0])  # |w1| = 5
    w2 = torch.tensor([[1.0, 2.0], [2.0, 4.0]])  # |w2| = 5
    g1, g2 = torch.tensor([0.6, 0.8]), torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    probe = LayerProbe()
    probe.before([[w1], [w2]], [[g1], [g2]])
    lr = 0.5
    w1 -= lr * g1  # plain SGD: the update is lr * g
    w2 -= lr * g2
    out = probe.after([[w1], [w2]], [lr, lr], {"trust_ratio": [2.0, float("nan")]})
    assert out["lr"] == [0.5, 0.5]
    assert out["grad_norm"] == pytest.approx([1.0, 5.0])
    assert out["weight_norm"] == pytest.approx([math.hypot(2.7, 3.6), math.sqrt(1 + 4 + 0.5**2 + 2**2)])
    assert out["update_ratio"] == pytest.approx([0.5 / 4.5, 2.5 / math.sqrt(9.25)])
    assert out["trust_ratio"] == [2.0, None]  # not finite: null, as in the table
    # Not armed (the epoch ended before its last step): weights only.
    unmeasured = LayerProbe().after([[w1]], [lr], {})
    assert unmeasured["grad_norm"] == [None] and unmeasured["update_ratio"] == [None]


def test_a_run_reports_each_group_and_dals_group_ratios_average_to_its_mean_ratio():
    config = {"workload": "synthetic", "workload_options": {"n_train": 320}, "seed": 1, "epochs": 2, "stage": "seed"}
    dals = run_trial({**config, "strategy": "dals"})
    groups = len(dals[0]["layers"]["lr"])
    assert groups == 4  # the MLP's four Linear layers, bottom to top
    for epoch in dals:
        layers = epoch["layers"]
        assert set(layers) == {"lr", "grad_norm", "weight_norm", "update_ratio", "trust_ratio"}
        assert layers["lr"][-1] == epoch["lr"]
        # Two tensors (weight, bias) per group: the mean of the group means is the mean over tensors.
        assert sum(layers["trust_ratio"]) / groups == pytest.approx(epoch["trust_ratio"], rel=1e-12)
    adam = run_trial({**config, "strategy": "adam"})
    assert "trust_ratio" not in adam[-1]["layers"]
    lars = run_trial({**config, "strategy": "lars"})
    assert all(r > 0 for r in lars[-1]["layers"]["trust_ratio"])


def test_the_gradient_norm_is_the_steps_own_before_the_strategy_rewrites_it():
    """DALS writes its filtered, decayed gradient into p.grad's storage; the probe reads the raw one.
    One batch per epoch: the only step's gradient is that of the initial weights, recomputed here."""
    from trainables import get_workload

    config = {"workload": "synthetic", "workload_options": {"n_train": 64}, "seed": 0, "epochs": 1,
              "stage": "seed", "strategy": "dals"}
    history = run_trial(config)
    workload = get_workload("synthetic")
    options = workload.validate_options(config["workload_options"])
    data = workload.stage_data(options, "seed", None)
    torch.manual_seed(0)
    model = workload.build_model(options, data.data)
    batches = data.train.batches(64, shuffle=True, generator=torch.Generator().manual_seed(0), train=True)
    inputs, labels = next(batches)
    torch.nn.functional.cross_entropy(model(inputs), labels).backward()
    want = [math.sqrt(sum(float(p.grad.square().sum()) for p in g)) for g in workload.layer_groups(model)]
    assert history[0]["layers"]["grad_norm"] == pytest.approx(want, rel=1e-5)
    decayed = [math.sqrt(sum(float((p.grad + 1e-4 * p.detach()).square().sum()) for p in g))
               for g in workload.layer_groups(model)]
    assert history[0]["layers"]["grad_norm"] != pytest.approx(decayed, rel=1e-9)


def test_without_layers_a_run_is_the_same_run_without_the_key():
    config = {"workload": "synthetic", "workload_options": {"n_train": 320}, "seed": 4, "epochs": 2,
              "stage": "seed", "strategy": "sam"}
    full, bare = run_trial(config), run_trial(config, layers=False)
    assert all("layers" not in h for h in bare)
    clocks = ("seconds", "step_seconds", "layers")
    assert [{k: v for k, v in h.items() if k not in clocks} for h in full] == \
        [{k: v for k, v in h.items() if k not in clocks} for h in bare]


def test_a_strategy_whose_param_groups_split_a_layer_group_reports_no_lr_per_group():
    """Muon gives a hidden group's matrices to Muon and its biases to AdamW: two LRs, so null, while
    the norms (which need no LR) are still one per layer group."""
    config = {"workload": "synthetic", "workload_options": {"n_train": 320}, "seed": 0, "epochs": 1,
              "stage": "seed", "strategy": "muon"}
    layers = run_trial(config)[0]["layers"]
    assert layers["lr"] == [None] * 4 and len(layers["grad_norm"]) == 4 and all(layers["grad_norm"])
