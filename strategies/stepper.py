"""The Stepper: one strategy's whole update (schedule, wrappers, optimizer) behind ``step(closure)``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # annotations only: the registry imports this module without torch
    import torch

from strategies.schedules import Schedule

__all__ = ["Stepper", "Update"]


class Update(Protocol):
    """What the Stepper drives: a torch optimizer, or a wrapper shaped like one.

    One may also have ``diagnostics() -> dict[str, float]`` (DALS: its phase and trust ratio),
    ``layer_diagnostics() -> dict[str, list[float]]`` (per layer group: DALS's and LARS's trust ratios), and
    ``eval()`` / ``train()`` when the weights it trains at are not the weights to score (Schedule-Free
    trains at an interpolation and scores its average): the loop calls them around every evaluation.
    """

    param_groups: list[dict]

    def step(self, closure: Callable[[], torch.Tensor]) -> Any: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


class Stepper:
    """Sets each group's LR for step ``t``, then runs ``update.step(closure)``.

    Group ``i``'s LR at step ``t`` is ``schedule(t, peak_i)``, where ``peak_i`` is the group's
    ``lr`` when the Stepper is built (base LR times the group's ``lr_scale``): the step counter
    here is the only clock, DALS's included. SAM's second pass, DALS's phase, the Grokfast filter
    and Lookahead's slow weights all live in ``update``.
    A non-finite loss is returned like any other: the trainable decides what divergence means.
    """

    def __init__(self, update: Update, schedule: Schedule) -> None:
        self.update = update
        self.schedule = schedule
        self.step_count = 0
        self._peaks = [float(group["lr"]) for group in update.param_groups]
        self._set_lrs()

    def _set_lrs(self) -> None:
        for group, peak in zip(self.update.param_groups, self._peaks, strict=True):
            group["lr"] = self.schedule(self.step_count, peak)

    def step(self, closure: Callable[[], torch.Tensor]) -> Any:
        """Run one update. ``closure`` zeroes grads, runs forward and backward, returns the loss."""
        self._set_lrs()
        loss = self.update.step(closure)
        self.step_count += 1
        return loss

    def lrs(self) -> list[float]:
        """Per param group, bottom to top (one per layer group; Muon splits each hidden one into its matrices
        and the rest): the LR of the latest step (before any step: the first's)."""
        return [float(group["lr"]) for group in self.update.param_groups]

    def diagnostics(self) -> dict[str, float]:
        """A small dict for logging: the update's own ``diagnostics()`` (DALS: phase, trust ratio), else empty."""
        diagnostics = getattr(self.update, "diagnostics", None)
        return diagnostics() if diagnostics is not None else {}

    def layer_diagnostics(self) -> dict[str, list[float]]:
        """Per layer group, bottom to top, of the latest step: the update's own ``layer_diagnostics()``
        (DALS and LARS: ``trust_ratio``, the mean over the group's tensors), else empty."""
        diagnostics = getattr(self.update, "layer_diagnostics", None)
        return diagnostics() if diagnostics is not None else {}

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """The weights to score, for the duration of an evaluation: ``update.eval()`` on entry and
        ``update.train()`` on exit where the update has them, else the weights as they are."""
        to_eval, to_train = getattr(self.update, "eval", None), getattr(self.update, "train", None)
        if to_eval is None or to_train is None:
            yield
            return
        to_eval()
        try:
            yield
        finally:
            to_train()

    def state_dict(self) -> dict[str, Any]:
        """Step counter (hence schedule position) and everything the update holds."""
        return {"step_count": self.step_count, "update": self.update.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.update.load_state_dict(state_dict["update"])
        self.step_count = int(state_dict["step_count"])
