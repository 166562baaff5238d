"""Workloads and strategies whose expected test accuracies are known exactly: for the selection tests
(``coin`` and the ``oracle`` strategies) and for the tuning-studies tests (``dial``, ``broad``, ``narrow``,
below).

Workload ``coin``: x ~ N(0, I_2), label 1 iff x_0 > 0, scored by a linear model. A linear boundary
whose normal is turned by an angle phi from the true one misclassifies exactly phi / pi of an isotropic
Gaussian, so its expected accuracy is 1 - phi / pi. Strategy ``oracle<A>`` ignores the gradient and
sets the model's boundary to phi = theta_A + SIGMA * noise at every step, theta_A = (1 - A / 100) * pi,
with noise drawn once per run from the run's seed: a common part (the same for every strategy at a
seed, as common seeds make it) and a part of its own. theta_A / SIGMA > 9, so phi > 0 in all but a
vanishing fraction of runs and the expected accuracy is A % up to the test rows' own sampling.
"""

import math

import torch
from torch import nn

from strategies import HParam, Strategy, register_strategy
from trainables import Data, Workload, register_workload
from trainables.workloads.synthetic import TensorSplit

TRUE_ACCURACY = {"oracle90": 90.0, "oracle88": 88.5, "oracle85": 85.0, "oracle80": 80.0}
"""Each strategy's expected test accuracy, in percent."""
SIGMA = 0.01 * math.pi  # the boundary angle's seed-to-seed spread: about 1 pp of accuracy
OWN = 0.8  # weight of a strategy's own noise; the common part's is 0.6 (0.8^2 + 0.6^2 = 1)


def load_data(options, data_dir):
    g = torch.Generator().manual_seed(0)  # the data must not depend on the trial seed
    x = torch.randn(256 + 20000, 2, generator=g)
    y = (x[:, 0] > 0).long()
    return Data(train=TensorSplit(x[:256], y[:256]), test=TensorSplit(x[256:], y[256:]), num_classes=2)


register_workload(Workload(
    name="coin", description="is x[0] positive? (2-d Gaussian, 20,000 test rows)", regime="scratch",
    default_epochs=1, batch_size=64, load_data=load_data,
    build_model=lambda options, data: nn.Sequential(nn.Linear(2, 2, bias=False)),
    layer_groups=lambda model: [list(model.parameters())],
))


class Oracle(torch.optim.Optimizer):
    """Sets the boundary of the model's one weight matrix to angle ``phi`` at every step."""

    def __init__(self, params, phi: float) -> None:
        super().__init__(params, {"lr": 0.0})
        self.phi = phi

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        normal = torch.tensor([math.cos(self.phi), math.sin(self.phi)])
        for group in self.param_groups:
            for p in group["params"]:
                p.copy_(torch.stack([-normal, normal]).to(p))  # logit_1 - logit_0 = 2 normal . x
        return loss


def _oracle(index: int, accuracy: float):
    theta = (1 - accuracy / 100) * math.pi

    def make_update(groups, hp, run):
        z = torch.randn(len(TRUE_ACCURACY) + 1)  # the global RNG is at the run's seed here (after the init)
        noise = OWN * float(z[index]) + 0.6 * float(z[-1])
        return Oracle(groups, theta + SIGMA * noise)

    return make_update


for i, (name, acc) in enumerate(TRUE_ACCURACY.items()):
    register_strategy(Strategy(
        name=name, generation="1", family="sgd", description=f"expected test accuracy {acc} %",
        hparams=(HParam("lr", 0.0, 10.0, low_inclusive=False),), defaults={"lr": 0.05},
        make_update=_oracle(i, acc),
    ))


# ---- the tuning decides: tests/test_studies_sweep.py --------------------------------------------------
#
# Workload ``dial`` is ``coin`` with 5,000 training rows (so 1,000 validation rows in the tune stage). Its
# strategies set phi from their ``lr`` alone: ``broad`` scores BROAD % at every learning rate; ``narrow``
# scores PEAK % for lr inside WINDOW and FLOOR % elsewhere. Its search range (a decade each side of its
# canonical 0.05: [0.005, 0.5], log scale) holds the window as a tenth of its log width, and its canonical lr
# lies outside it, so a study of T trials (trial 0 canonical, T - 1 random draws) finds the window with
# probability 1 - 0.9^(T - 1). As tuned by such a protocol, ``narrow`` is expected to score
# FLOOR + (PEAK - FLOOR) (1 - 0.9^(T - 1)) (``protocol_truth``): below ``broad`` for small T, though the
# study that finds the window scores far above it.

BROAD, PEAK, FLOOR = 88.0, 95.0, 80.0
WINDOW = (0.005 * 10 ** 1.2, 0.005 * 10 ** 1.4)  # a tenth of the log range [0.005, 0.5]


def protocol_truth(trials: int) -> dict[str, float]:
    """Each ``dial`` strategy's expected test accuracy (percent) after a study of ``trials`` random trials."""
    found = 1 - 0.9 ** (trials - 1)
    return {"broad": BROAD, "narrow": FLOOR + (PEAK - FLOOR) * found}


def load_dial(options, data_dir):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5000 + 20000, 2, generator=g)
    y = (x[:, 0] > 0).long()
    return Data(train=TensorSplit(x[:5000], y[:5000]), test=TensorSplit(x[5000:], y[5000:]), num_classes=2)


register_workload(Workload(
    name="dial", description="is x[0] positive? (2-d Gaussian; 1,000 validation, 20,000 test rows)",
    regime="scratch", default_epochs=1, batch_size=1000, load_data=load_dial,
    build_model=lambda options, data: nn.Sequential(nn.Linear(2, 2, bias=False)),
    layer_groups=lambda model: [list(model.parameters())],
))


def dial_accuracy(strategy: str, lr: float) -> float:
    """The expected accuracy (percent) of ``dial`` strategy ``strategy`` at learning rate ``lr``."""
    if strategy == "broad":
        return BROAD
    return PEAK if WINDOW[0] <= lr <= WINDOW[1] else FLOOR


def _dial(index: int, name: str):
    def make_update(groups, hp, run):
        z = torch.randn(3)  # the global RNG is at the run's seed here (after the init)
        noise = OWN * float(z[index]) + 0.6 * float(z[-1])
        return Oracle(groups, (1 - dial_accuracy(name, float(hp["lr"])) / 100) * math.pi + SIGMA * noise)

    return make_update


for i, name in enumerate(("broad", "narrow")):
    register_strategy(Strategy(
        name=name, generation="1", family="sgd", description=f"{name}: its accuracy against lr is set exactly",
        hparams=(HParam("lr", 0.0, 10.0, low_inclusive=False),), defaults={"lr": 0.05},
        make_update=_dial(i, name),
    ))
