"""The CIFAR-10 workload: torchvision's reader, uint8 data on the device, batched augmentation.

Data: torchvision's ``CIFAR10`` reads ``<data_dir>/cifar-10-batches-py`` (``data_batch_1..5``,
``test_batch``, ``batches.meta``: the python-pickle layout of the official archive). It downloads
only with ``download: true``; offline, a missing directory is a ``WorkloadError`` that says where
to put what. ``verify_checksums: false`` reads a copy in the same layout whose files are not the
official ones (a subset, or the tests' tiny generated set); torchvision otherwise rejects them.

Images stay uint8 on the trial's device (4x smaller than float, and converting a batch is cheap);
augmentation (pad-4 random crop, horizontal flip) and normalisation are tensor ops on whole
batches, not per-image PIL transforms.

Model: 3 x (conv3x3 32/64/128, ReLU, maxpool2), then FC 2048-256-10. Layer groups: each conv
block, then the head.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from trainables.workload import Data, Split, WorkloadError

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
PAD = 4
BASE_FOLDER = "cifar-10-batches-py"


def random_crop(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad each side by ``pad`` and cut a random same-size window per image.

    ``images``: ``[B, C, H, W]``. One gather for the whole batch; offsets are drawn on the CPU from
    ``generator`` so that runs on CPU and GPU see the same crops.
    """
    b, c, h, w = images.shape
    padded = nn.functional.pad(images, (pad, pad, pad, pad))
    dy, dx = torch.randint(0, 2 * pad + 1, (2, b), generator=generator).to(images.device)
    rows = (dy[:, None] + torch.arange(h, device=images.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, None, :]
    batch = torch.arange(b, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(images.shape[0], generator=generator).to(images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


class ImageSplit(Split):
    """uint8 ``[N, 3, 32, 32]`` images; a batch is augmented (training) and normalised to float."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, augment: bool = True) -> None:
        self.images, self.labels, self.augment = images, labels, augment
        self._mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1) * 255

    def to(self, device: torch.device) -> ImageSplit:
        return ImageSplit(self.images.to(device), self.labels.to(device), self.augment)

    def batch(self, index: torch.Tensor, train: bool, generator: torch.Generator) -> torch.Tensor:
        images = self.images[index]
        if train and self.augment:
            images = random_flip(random_crop(images, PAD, generator), generator)
        return (images.float() - self._mean) / self._std

    def subset(self, rows: torch.Tensor) -> ImageSplit:
        return ImageSplit(self.images[rows], self.labels[rows], self.augment)


def _reader(verify_checksums: bool) -> type:
    from torchvision.datasets import CIFAR10

    if verify_checksums:
        return CIFAR10

    class UncheckedCIFAR10(CIFAR10):
        """torchvision's reader with the checksums dropped: files only have to exist."""

        train_list = [[name, None] for name, _ in CIFAR10.train_list]
        test_list = [[name, None] for name, _ in CIFAR10.test_list]
        meta = {**CIFAR10.meta, "md5": None}

    return UncheckedCIFAR10


def load_data(options: dict, data_dir: str | None) -> Data:
    """The 50000 training and 10000 test images (lrsweep holds out ``val_size`` of train to tune)."""
    if data_dir is None:
        raise WorkloadError("workload 'cifar10' needs config['data_dir'] (the folder holding cifar-10-batches-py)")
    root = Path(data_dir).expanduser()
    if not (root / BASE_FOLDER).is_dir() and not options["download"]:
        raise WorkloadError(
            f"CIFAR-10 not found: expected {root / BASE_FOLDER}/ holding data_batch_1 ... data_batch_5, "
            "test_batch and batches.meta (the python version of CIFAR-10, "
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, extracted into "
            f"{root}), or set workload_options download: true on a machine with network access"
        )
    reader = _reader(options["verify_checksums"])
    try:
        train = reader(root=str(root), train=True, download=options["download"])
        test = reader(root=str(root), train=False, download=False)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
        raise WorkloadError(
            f"CIFAR-10 under {root / BASE_FOLDER} could not be read ({err}); a copy that is not the "
            "official archive needs workload_options verify_checksums: false"
        ) from err

    def tensors(ds) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW, uint8
        return images, torch.tensor(ds.targets, dtype=torch.int64)

    return Data(ImageSplit(*tensors(train), options["augment"]), ImageSplit(*tensors(test)), num_classes=10)


class ConvNet(nn.Sequential):
    """3 x (conv3x3, ReLU, maxpool2) with 32/64/128 channels, then FC 2048-256-10.

    A Sequential of named blocks, so a population trial can stack it layer by layer.
    """

    def __init__(self, num_classes: int = 10) -> None:
        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))

        blocks = {"block1": block(3, 32), "block2": block(32, 64), "block3": block(64, 128)}
        head = nn.Sequential(nn.Flatten(), nn.Linear(128 * 4 * 4, 256), nn.ReLU(), nn.Linear(256, num_classes))
        super().__init__(OrderedDict(**blocks, head=head))


def build_model(options: dict, data: Data) -> nn.Module:
    return ConvNet(data.num_classes)


def layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    return [list(m.parameters()) for m in (model.block1, model.block2, model.block3, model.head)]


