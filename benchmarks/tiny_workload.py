"""A plugin workload that trains in milliseconds, for ``benchmarks/driver_scale.py``: 48 rows of 4-d
Gaussian data, a 4-8-2 MLP, one batch per epoch. A sweep of it measures the driver, not training."""

import torch
from torch import nn

from trainables import Data, Workload, register_workload
from trainables.workloads.synthetic import TensorSplit


def load_data(options, data_dir):
    g = torch.Generator().manual_seed(0)  # the data must not depend on the trial seed
    x = torch.randn(48, 4, generator=g)
    y = (x[:, 0] > 0).long()
    return Data(train=TensorSplit(x[:32], y[:32]), test=TensorSplit(x[32:], y[32:]), num_classes=2)


register_workload(Workload(
    name="tiny",
    description="is x[0] positive? (4-d Gaussian, 32 training rows): trains in milliseconds",
    regime="scratch",
    default_epochs=1,
    batch_size=32,
    load_data=load_data,
    build_model=lambda options, data: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)),
    layer_groups=lambda model: [list(model[0].parameters()), list(model[2].parameters())],
))
