"""Wrappers that give Grokfast and SAM the plain ``step(closure) -> loss`` of a torch optimizer.

With them every strategy's update is one ``optimizer.step(closure)`` call, so the Stepper (and
the training loop) never asks which strategy it runs. pytorch-optimizer's ``Lookahead`` already
has that shape and a complete ``state_dict`` (slow weights included), so it needs no wrapper.
"""

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

__all__ = ["GrokfastFilter", "NonFiniteTolerant", "TwoPassSAM"]


class GrokfastFilter:
    """SGD (or any optimizer) on ``g + lam * EMA_alpha(g)``: pytorch-optimizer's ``gradfilter_ema``.

    The filter runs between the closure's backward and the inner step. Its EMA starts at the
    first gradient (the library's choice) and is part of ``state_dict``.
    """

    def __init__(self, optimizer: Optimizer, params: Sequence[nn.Parameter], alpha: float, lamb: float) -> None:
        self.optimizer = optimizer
        self.alpha, self.lamb = alpha, lamb
        # gradfilter_ema walks model.named_parameters(); a bare module holding the same Parameter
        # objects gives it stable names without a model.
        self._named = nn.Module()
        for index, p in enumerate(params):
            self._named.register_parameter(f"p{index}", p)
        self.ema: dict[str, torch.Tensor] | None = None

    @property
    def param_groups(self) -> list[dict]:
        return self.optimizer.param_groups

    def step(self, closure: Callable[[], torch.Tensor]) -> Any:
        """Forward/backward, filter the gradients in place, then the inner optimizer's step."""
        from pytorch_optimizer.optimizer.grokfast import gradfilter_ema

        with torch.enable_grad():
            loss = closure()
        self.ema = gradfilter_ema(self._named, grads=self.ema, alpha=self.alpha, lamb=self.lamb)
        self.optimizer.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "ema": None if self.ema is None else dict(self.ema)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state_dict["optimizer"])
        ema = state_dict["ema"]
        self.ema = None if ema is None else {name: tensor.clone() for name, tensor in ema.items()}


class TwoPassSAM:
    """Runs pytorch-optimizer's ``SAM`` (two forward/backward passes) behind ``step(closure)``.

    The library expects the first pass's gradients before ``SAM.step``; this wrapper runs that
    first closure and returns its loss (the loss at the unperturbed weights), so a trainable logs
    the same quantity as for every other strategy.
    """

    def __init__(self, sam: Optimizer) -> None:
        self.sam = sam

    @property
    def param_groups(self) -> list[dict]:
        return self.sam.param_groups

    def step(self, closure: Callable[[], torch.Tensor]) -> Any:
        with torch.enable_grad():
            loss = closure()
        self.sam.step(closure)
        return loss

    def state_dict(self) -> dict[str, Any]:
        return self.sam.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.sam.load_state_dict(state_dict)


class NonFiniteTolerant:
    """An optimizer whose linear algebra raises on non-finite statistics (SOAP's ``eigh``), made to
    return the loss instead when the run has diverged, so that the trial reports ``diverged``.

    A ``LinAlgError`` on a finite loss, gradients and weights is a real failure and is raised.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer

    @property
    def param_groups(self) -> list[dict]:
        return self.optimizer.param_groups

    def _diverged(self, loss: torch.Tensor | None) -> bool:
        tensors = [p for group in self.param_groups for p in group["params"]]
        tensors += [p.grad for p in tensors if p.grad is not None]
        return (loss is not None and not torch.isfinite(loss).all()) or not all(t.isfinite().all() for t in tensors)

    def step(self, closure: Callable[[], torch.Tensor]) -> Any:
        losses: list[torch.Tensor] = []

        def recorded() -> torch.Tensor:
            losses.append(closure())
            return losses[-1]

        try:
            return self.optimizer.step(recorded)
        except torch.linalg.LinAlgError:
            loss = losses[0] if losses else None
            if not self._diverged(loss):
                raise
            return loss

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state_dict)
