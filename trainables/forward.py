"""The forward paths of a population: K members' logits from their stacked parameters in one pass.

``Stacked`` runs an ``nn.Sequential`` tree layer by layer over parameters stacked along a leading
member dimension (one batched matmul per linear layer; per-member or grouped convolutions);
``Vmapped`` is the generic fallback through ``torch.func.vmap``. ``member_losses`` is each member's
mean cross-entropy, computed as its solo run computes it, so the stacked backward rounds as alone.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from trainables.workload import Workload

__all__ = ["PATHS", "SOLO", "STACKED", "VMAP", "Stacked", "Vmapped", "choose_path", "grouped_conv_pays",
           "has_conv", "member_losses", "pass_seconds", "stackable"]

SOLO, STACKED, VMAP = "solo", "stacked", "vmap"
PATHS = (SOLO, STACKED, VMAP)
"""How a trial's members run forward: each through its own module (``SOLO``: any model, buffers,
mixed precision, text), stacked layer by layer (``STACKED``), or under ``torch.func.vmap`` (``VMAP``)."""


def _layers(module: nn.Module) -> list[nn.Module] | None:
    """The leaf modules of a Sequential tree in execution order; None if anything else is in it."""
    if isinstance(module, nn.Sequential):
        out: list[nn.Module] = []
        for child in module:
            leaves = _layers(child)
            if leaves is None:
                return None
            out += leaves
        return out
    return [module] if isinstance(module, nn.Linear | nn.Conv2d | nn.ReLU | nn.MaxPool2d | nn.Flatten) else None


def stackable(model: nn.Module) -> bool:
    """Whether ``model`` is stacked layer by layer (else the population falls back to vmap)."""
    return _layers(model) is not None


def choose_path(workload: Workload, model: nn.Module, k: int, mixed_precision: bool = False) -> str:
    """The forward path of a trial of ``k`` members of ``workload``'s ``model``, decided once, here.

    Members run alone, one after another, each with its own RNG stream, for the reasons
    ``Workload.alone_because`` gives before a model exists (one member: its own module rounds as it
    always has; a model declared with buffers; bf16), and when the built model keeps buffers all
    the same (a plugin that did not declare them). Otherwise members share each pass: stacked layer
    by layer where the model allows, else vmapped.
    """
    if workload.alone_because(k, mixed_precision) is not None or any(True for _ in model.buffers()):
        return SOLO
    return STACKED if stackable(model) else VMAP


class _StackedLinear(torch.autograd.Function):
    """(K, B, in) x (K, out, in) + (K, out) -> (K, B, out), with the backward written as ``F.linear``'s.

    Autograd's own backward of ``baddbmm(b, x, w^T)`` forms the weight gradient as (x^T g)^T, which
    rounds differently from the solo run's g^T x; these products are the solo run's, batched.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        wt = w.transpose(1, 2)
        return torch.baddbmm(b.unsqueeze(1), x, wt) if b is not None else torch.bmm(x, wt)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        x, w = ctx.saved_tensors
        grad_x = torch.bmm(g, w) if ctx.needs_input_grad[0] else None
        grad_w = torch.bmm(g.transpose(1, 2), x) if ctx.needs_input_grad[1] else None
        grad_b = g.sum(dim=1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


def _linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """(K, B, in) -> (K, B, out) with weights (K, out, in)."""
    if x.stride(0) == 0:  # one input for every member (evaluation): expand after, not before
        x = x.contiguous()
    return _StackedLinear.apply(x, w, b)


class Stacked:
    """The forward pass of K copies of a Sequential model over stacked parameters.

    Vectors travel as (K, B, features), so a linear layer is one ``baddbmm``. Images travel either
    in the grouped layout (B, K * C, H, W), so a convolution is one grouped call (``grouped``), or
    as (K, B, C, H, W) with one convolution per member, which rounds exactly as a solo run does.
    """

    def __init__(self, template: nn.Module, k: int, grouped: bool) -> None:
        self.layers = _layers(template)
        self.k, self.grouped = k, grouped
        names = {id(p): n for n, p in template.named_parameters()}
        self.param_names = [[names[id(p)] for p in m.parameters(recurse=False)] for m in self.layers]
        self.chain = all(isinstance(layer, nn.Linear | nn.ReLU) for layer in self.layers)
        """Linear and ReLU layers only: ``train_step`` can run the pass without autograd."""

    def __call__(self, params: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """``x`` (K, B, ...) -> logits (K, B, classes)."""
        k, grouped = self.k, self.grouped and x.dim() == 5
        if grouped:
            x = x.transpose(0, 1).reshape(x.shape[1], k * x.shape[2], *x.shape[3:])
        elif x.dim() == 5:
            # One image tensor per member until Flatten: unbind, never x[i], whose backward would
            # write a full-size gradient per member.
            x = list(x.unbind(0))
        fresh = False  # whether x is the previous layer's own new tensor
        for layer, names in zip(self.layers, self.param_names, strict=True):
            p = [params[n] for n in names]
            w, b = (p[0], p[1] if len(p) > 1 else None) if p else (None, None)
            if isinstance(layer, nn.Linear):
                x = _linear(x, w, b)
            elif isinstance(layer, nn.Conv2d):
                conv = (layer.stride, layer.padding, layer.dilation)
                if grouped:
                    x = F.conv2d(x, w.reshape(-1, *w.shape[2:]), None if b is None else b.reshape(-1), *conv,
                                 k * layer.groups)
                else:
                    bs = b.unbind(0) if b is not None else [None] * k
                    x = [F.conv2d(xi, wi, bi, *conv, layer.groups) for xi, wi, bi in zip(x, w.unbind(0), bs,
                                                                                          strict=True)]
            elif isinstance(layer, nn.ReLU):
                # In place on a linear or convolution's own output (never on the input or a view of it):
                # one allocation fewer per layer, the same values and backward.
                relu = torch.relu_ if fresh else torch.relu
                x = [relu(xi) for xi in x] if isinstance(x, list) else relu(x)
            elif isinstance(layer, nn.MaxPool2d):
                pool = (layer.kernel_size, layer.stride, layer.padding, layer.dilation, layer.ceil_mode)
                x = [F.max_pool2d(xi, *pool) for xi in x] if isinstance(x, list) else F.max_pool2d(x, *pool)
            elif isinstance(layer, nn.Flatten):
                if isinstance(x, list):
                    x = torch.stack([xi.flatten(1) for xi in x])
                elif grouped and x.dim() == 4:  # (B, K * C, H, W) -> (K, B, C * H * W)
                    x = x.reshape(x.shape[0], k, -1).transpose(0, 1)
                else:
                    x = x.flatten(2)
            fresh = isinstance(layer, nn.Linear | nn.Conv2d)
        return x


    def train_step(self, params: Mapping[str, torch.Tensor], x: torch.Tensor, labels: torch.Tensor,
                   running: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """A Linear/ReLU chain's forward and backward without autograd (``chain``): each member's loss
        (K,), the logits, and each parameter's gradient by name.

        The operations are those autograd runs for ``__call__`` and ``member_losses``, in the same
        order on the same tensors, so the results are bit-identical; what goes is the graph's own
        cost (a node, saved tensors and a gradient accumulation per layer), which at a few members
        is a fifth of a step.
        """
        with torch.no_grad():
            inputs: list[torch.Tensor | None] = []  # per layer: a Linear's input, a ReLU's output
            fresh = False
            for layer, names in zip(self.layers, self.param_names, strict=True):
                if isinstance(layer, nn.Linear):
                    inputs.append(x)
                    w, b = params[names[0]], params[names[1]] if len(names) > 1 else None
                    x = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2)) if b is not None else \
                        torch.bmm(x, w.transpose(1, 2))
                else:
                    x = torch.relu_(x) if fresh else torch.relu(x)
                    inputs.append(x)
                fresh = isinstance(layer, nn.Linear)
            log_probs, values, weight = _loss_parts(x, labels, running)
            k, b, _ = log_probs.shape
            g = torch.zeros_like(log_probs).scatter_(2, labels.unsqueeze(2), (-weight).unsqueeze(2).expand(k, b, 1))
            g = torch._log_softmax_backward_data(g, log_probs, 2, log_probs.dtype).to(x.dtype)
            grads: dict[str, torch.Tensor] = {}
            first = next(i for i, layer in enumerate(self.layers) if isinstance(layer, nn.Linear))
            for i in range(len(self.layers) - 1, first - 1, -1):
                layer, names, saved = self.layers[i], self.param_names[i], inputs[i]
                if isinstance(layer, nn.ReLU):
                    g = torch.ops.aten.threshold_backward(g, saved, 0)
                    continue
                if len(names) > 1:
                    grads[names[1]] = g.sum(dim=1)
                grads[names[0]] = torch.bmm(g.transpose(1, 2), saved)
                if i > first:
                    g = torch.bmm(g, params[names[0]])
        return values, x, grads


def has_conv(model: nn.Module) -> bool:
    """Whether a stackable ``model`` has a convolution, so ``Stacked`` has two layouts to choose from."""
    return any(isinstance(layer, nn.Conv2d) for layer in _layers(model) or ())


def pass_seconds(fn: Callable[[], torch.Tensor], device: torch.device) -> float:
    """Seconds of one forward and backward, ``fn().sum().backward()``, synchronised on a GPU."""
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn().sum().backward()
    if cuda:
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def grouped_conv_pays(template: nn.Module, params: Mapping[str, torch.Tensor], x: torch.Tensor,
                      repeats: int = 3) -> tuple[bool, dict[bool, float]]:
    """Whether one grouped convolution for all members runs a forward and backward of ``template``
    faster than one convolution per member, timed on ``x``'s device: (the answer, each layout's
    median seconds by ``grouped``). ``params`` (K, ...) are copied, so their gradients stay untouched."""
    probe = {name: p.detach().clone().requires_grad_() for name, p in params.items()}
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeats + 1):  # the first round warms up (on a GPU: cuDNN's algorithm search)
        for grouped in (False, True):
            forward = functools.partial(Stacked(template, x.shape[0], grouped), probe, x)
            times[grouped].append(pass_seconds(forward, x.device))
    seconds = {grouped: sorted(t[1:])[len(t[1:]) // 2] for grouped, t in times.items()}
    return seconds[True] < seconds[False], seconds


class Vmapped:
    """The generic fallback: ``torch.func.functional_call`` of the template under ``vmap``."""

    def __init__(self, template: nn.Module) -> None:
        self.template = template

    def __call__(self, params: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call, vmap

        return vmap(lambda p, xi: functional_call(self.template, p, (xi,)), randomness="different")(dict(params), x)


def _loss_parts(logits: torch.Tensor, labels: torch.Tensor, running: Sequence[int]):
    """Log-probabilities (K, B, C), each member's mean cross-entropy (K,) as its own ``F.cross_entropy``
    computes it, and the weight (K, 1) of its rows in the objective: 1 / B when running, else 0."""
    # One log_softmax over the stack rounds as each member's own (it works row by row); each mean is
    # the member's own nll_loss (it sums in the kernel's order), outside autograd.
    log_probs = F.log_softmax(logits.float(), dim=2)
    k, b, _ = log_probs.shape
    with torch.no_grad():
        values = torch.stack([F.nll_loss(lp, t) for lp, t in zip(log_probs.unbind(0), labels.unbind(0), strict=True)])
    weight = torch.zeros(k, 1, dtype=log_probs.dtype, device=log_probs.device)
    weight[list(running)] = 1.0
    weight /= b  # in the logits' dtype, as the mean's own gradient 1 / B is formed
    return log_probs, values, weight


def member_losses(logits: torch.Tensor, labels: torch.Tensor,
                  running: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each member's mean cross-entropy (K,) of logits (K, B, classes), bit-identical to its own
    ``F.cross_entropy``, and the scalar whose backward gives every running member's logits exactly the
    gradients its own loss would (members not running get zeros): one per-row loss weighted 1 / B,
    the mean's own gradient, so the graph has one loss node instead of K."""
    log_probs, values, weight = _loss_parts(logits, labels, running)
    k, b, classes = log_probs.shape
    rows = F.nll_loss(log_probs.reshape(k * b, classes), labels.reshape(k * b), reduction="none")
    return values, (rows.view(k, b) * weight).sum()
