"""The synthetic workload: the paper's Gaussian 10-class task and its 64-128-128-128-10 MLP.

The generator is exact (DESIGN.md): a torch generator seeded 42 draws ``X ~ N(0, 1)`` of shape
8000 x 64; labels are ``argmax(3 * X[:, :10])``; then ``X = X + 0.1 * N(0, 1)`` from the same
generator. Rows 0..6399 are the training split, rows 6400..7999 the test split. The tune stage
holds out ``val_fraction`` of the training rows (lrsweep's fixed permutation, ``workload.holdout``);
the seed stage trains on all 6400 rows and scores the 1600 test rows.

Data stay as two tensors on the trial's device and batches are tensor slices: no DataLoader.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn

from trainables.workload import Data, Split, gather_rows

N_ROWS, N_FEATURES, N_SIGNAL, N_CLASSES = 8000, 64, 10, 10
N_TRAIN = 6400
GENERATOR_SEED = 42


@lru_cache(maxsize=1)
def _generate_cached() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(GENERATOR_SEED)
    x = torch.randn(N_ROWS, N_FEATURES, generator=g)
    y = (3 * x[:, :N_SIGNAL]).argmax(dim=1)
    x = x + 0.1 * torch.randn(N_ROWS, N_FEATURES, generator=g)
    return x, y


def generate() -> tuple[torch.Tensor, torch.Tensor]:
    """The full 8000-row task ``(X float32 [8000, 64], y int64 [8000])``, fresh copies each call."""
    x, y = _generate_cached()
    return x.clone(), y.clone()


def bayes_ceiling() -> float:
    """Test accuracy of the best classifier the generated data allow: the label is the argmax of the
    clean signal dimensions, and what a classifier sees of them is the noisy ``X[:, :10]``; predicting
    its argmax is the optimal rule (DESIGN.md), so no model can beat this score on the test rows."""
    x, y = _generate_cached()
    return (x[N_TRAIN:, :N_SIGNAL].argmax(dim=1) == y[N_TRAIN:]).double().mean().item()


class TensorSplit(Split):
    """Inputs as one tensor; a batch is a row slice."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        self.inputs, self.labels = inputs, labels

    def to(self, device: torch.device) -> TensorSplit:
        return TensorSplit(self.inputs.to(device), self.labels.to(device))

    def batch(self, index: torch.Tensor, train: bool, generator: torch.Generator) -> torch.Tensor:
        return self.inputs[index]

    def member_batch(self, index: torch.Tensor, train: bool, generators) -> torch.Tensor:
        """Every member's rows in one gather: (K, B) indices -> (K, B, features)."""
        return gather_rows(self.inputs, index)

    def subset(self, rows: torch.Tensor) -> TensorSplit:
        return TensorSplit(self.inputs[rows], self.labels[rows])


def load_data(options: dict, data_dir: str | None) -> Data:
    """The 6400 training rows and the 1600 test rows."""
    x, y = generate()
    return Data(TensorSplit(x[:N_TRAIN], y[:N_TRAIN]), TensorSplit(x[N_TRAIN:], y[N_TRAIN:]), N_CLASSES)


class MLP(nn.Sequential):
    """Linear layers of the given widths with ReLU between them: no dropout, no normalisation."""

    def __init__(self, widths: tuple[int, ...] = (N_FEATURES, 128, 128, 128, N_CLASSES)) -> None:
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(nn.Linear(fan_in, fan_out))
            if i < len(widths) - 2:
                layers.append(nn.ReLU())
        super().__init__(*layers)


def paper_rng_prelude() -> None:
    """Advance torch's global RNG as the reference code does before it builds the model.

    The reference (``make_data`` in ``codes/run_comprehensive.py``) seeds the *global* RNG with 42,
    draws X and then the noise from it, and initialises the MLP from what is left; lrsweep draws the
    same data from a private generator, so a paper-order trial makes (and discards) the same draws.
    """
    torch.randn(N_ROWS, N_FEATURES)
    torch.randn(N_ROWS, N_FEATURES)


def build_model(options: dict, data: Data) -> nn.Module:
    return MLP()


def layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """One group per Linear layer, input layer first (ReLUs hold no parameters)."""
    return [list(m.parameters()) for m in model if isinstance(m, nn.Linear)]


