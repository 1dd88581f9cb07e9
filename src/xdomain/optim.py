"""How an optimizer step happens, in one place: backward (scaled under fp16), the NaN check,
the gradient average over processes, stepping, the loss scaler. A method never sees devices,
precision scalers or processes: it calls `Method.update` / `backward` / `step`, which hand the
work to the `Stepper` the Trainer attached (a plain local one outside training).

Gradients are averaged here rather than by wrapping networks in DDP: GAN methods call the same
D several times per step and backpropagate several losses, which DDP's one-forward-one-backward
bookkeeping does not fit. Float buffers (batch-norm running statistics) are averaged after
every step with the same helper (`all_reduce_mean`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from xdomain.errors import NonFiniteLossError


def all_reduce_mean(accelerator: Any, tensors: list[Tensor]) -> None:
    """Average `tensors` in place over the processes, as one flat all-reduce."""
    if not tensors or accelerator is None or accelerator.num_processes <= 1:
        return
    flat = accelerator.reduce(torch.cat([t.reshape(-1) for t in tensors]), reduction="mean")
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()


class Stepper:
    """Backward and optimizer steps for one process: plain (`accelerator=None`), or through
    Hugging Face Accelerate (its loss scaler under fp16, its process group)."""

    def __init__(self, accelerator: Any = None) -> None:
        self.accelerator = accelerator

    @property
    def scaler(self) -> Any:
        """The loss scaler under fp16 (for a loss that needs it, e.g. a gradient penalty)."""
        return getattr(self.accelerator, "scaler", None)

    @property
    def is_main_process(self) -> bool:
        return self.accelerator is None or bool(getattr(self.accelerator, "is_main_process", True))

    def backward(
        self, loss: Tensor, *, retain_graph: bool = False, inputs: list[Tensor] | None = None
    ) -> None:
        if not torch.isfinite(loss.detach()).all():
            raise NonFiniteLossError(
                f"loss is {loss.item()} at this step: training diverged; lower the learning "
                "rate or use precision=fp32; the last good checkpoint is kept"
            )
        if self.scaler is not None:
            loss = self.scaler.scale(loss)
        loss.backward(retain_graph=retain_graph, inputs=inputs)

    def step(self, *opts: torch.optim.Optimizer) -> None:
        """Average the accumulated gradients over processes and step each optimizer; under fp16
        the loss scale is updated once, after all of them (GradScaler's rule for several
        optimizers in one iteration)."""
        params = [p for opt in opts for g in opt.param_groups for p in g["params"]]
        all_reduce_mean(self.accelerator, [p.grad for p in params if p.grad is not None])
        scaler = self.scaler
        for opt in opts:
            if scaler is not None:
                scaler.step(opt)
            else:
                opt.step()
        if scaler is not None:
            scaler.update()


def check_finite(logs: dict[str, float], step: int) -> None:
    """A logged loss that is NaN or Inf stops the run (the last good checkpoint is kept)."""
    bad = {k: v for k, v in logs.items() if not math.isfinite(v)}
    if bad:
        k, v = next(iter(bad.items()))
        raise NonFiniteLossError(
            f"step {step}: {k} = {v}: training diverged; lower the learning rate or use "
            "train.precision=fp32; the last good checkpoint is kept"
        )
