"""A workload and strategies whose validation accuracy is a known function of the learning rate, for
the calibrated-range tests.

Workload ``tilt``: x ~ N(0, I_2), label 1 iff x_0 > 0, scored by a linear model. A boundary whose
normal is turned by phi from the true one misclassifies phi / pi of an isotropic Gaussian. Strategy
``cliff<k>`` ignores the gradient: at every step it sets the boundary to phi(lr), lr the step's own
(scheduled) learning rate, with the shape of a real LR curve: below the best lr* the boundary
turns away by an eighth of a turn per decade, phi = (pi / 4) log10(lr* / lr), and its weights shrink
in proportion, to nothing (chance, 50%) two decades below lr*, as a run that barely moved; from lr*
to 4 lr* it is exact (phi = 0, accuracy 100%, the best possible); above 4 lr* the boundary flips
(phi = pi, every row wrong): the cliff where training diverges. Canonical lr 0.005 for both, so both
search [5e-4, 0.05] by default: ``cliff_inside`` has lr* = 0.005 inside it, ``cliff_above`` lr* = 0.5,
a decade above its top.
"""

import math

import torch
from torch import nn

from strategies import HParam, Strategy, register_strategy
from trainables import Data, Workload, register_workload
from trainables.workloads.synthetic import TensorSplit

CANONICAL = 0.005
BEST_LR = {"cliff_inside": 0.005, "cliff_above": 0.5}
"""Each strategy's lr*: the lowest lr of its exact plateau [lr*, 4 lr*]."""
PER_DECADE = math.pi / 4
SCALE = 3.0  # the weights' norm: the loss of a flipped boundary is about 25x that of the exact one


def angle(lr: float, best: float) -> float:
    """The boundary's angle from the true one at learning rate ``lr`` (see the module docstring)."""
    if lr > 4 * best:
        return math.pi
    return min(math.pi / 2, PER_DECADE * max(0.0, math.log10(best / lr)))


def norm(lr: float, best: float) -> float:
    """The weights' norm at ``lr``: SCALE where the run learned, shrinking to 0 at chance."""
    phi = angle(lr, best)
    return SCALE if phi == math.pi else SCALE * (1 - phi / (math.pi / 2))


def expected_accuracy(lr: float, best: float) -> float:
    """The accuracy of the boundary at ``lr`` on an isotropic Gaussian: 1 - phi / pi (a model of zero
    weights predicts one class: 50%)."""
    return 1 - angle(lr, best) / math.pi


def load_data(options, data_dir):
    g = torch.Generator().manual_seed(0)  # the data must not depend on the trial seed
    x = torch.randn(4000 + 4000, 2, generator=g)
    y = (x[:, 0] > 0).long()
    return Data(train=TensorSplit(x[:4000], y[:4000]), test=TensorSplit(x[4000:], y[4000:]), num_classes=2)


def zero_model() -> nn.Module:
    """The linear model at zero weights: chance, as the strategies leave it at a negligible lr."""
    model = nn.Sequential(nn.Linear(2, 2, bias=False))
    nn.init.zeros_(model[0].weight)
    return model


register_workload(Workload(
    name="tilt", description="is x[0] positive? (2-d Gaussian; accuracy a known function of lr)",
    regime="scratch", default_epochs=1, batch_size=64, load_data=load_data,
    build_model=lambda options, data: zero_model(),
    layer_groups=lambda model: [list(model.parameters())],
))


class Cliff(torch.optim.Optimizer):
    """Sets the model's one weight matrix to the boundary at angle ``angle(lr, best)``, lr the group's
    current (scheduled) learning rate."""

    def __init__(self, params, best: float) -> None:
        super().__init__(params, {"lr": CANONICAL})
        self.best = best

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr = float(group["lr"])
            phi = angle(lr, self.best)
            normal = norm(lr, self.best) * torch.tensor([math.cos(phi), math.sin(phi)])
            for p in group["params"]:
                p.copy_(torch.stack([-normal, normal]).to(p))  # logit_1 - logit_0 = 2 normal . x
        return loss


for name, best in BEST_LR.items():
    register_strategy(Strategy(
        name=name, generation="1", family="sgd", description=f"exact from lr {best:g} to {4 * best:g}",
        hparams=(HParam("lr", 0.0, 10.0, low_inclusive=False),), defaults={"lr": CANONICAL},
        make_update=lambda groups, hp, run, best=best: Cliff(groups, best),
    ))
