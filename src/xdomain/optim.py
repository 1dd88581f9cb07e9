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
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from xdomain.errors import ConfigError, NonFiniteLossError
from xdomain.sections import TrainConfig


def make_accelerator(t: TrainConfig) -> Any:
    """Hugging Face Accelerate for `train.device` / `train.precision` / `train.threads`."""
    from accelerate import Accelerator

    cuda = torch.cuda.is_available()
    if t.device == "cuda" and not cuda:
        raise ConfigError("train.device=cuda but no CUDA device is visible; use train.device=cpu")
    on_cpu = t.device == "cpu" or not cuda
    if t.precision == "fp16" and on_cpu:
        raise ConfigError(
            "train.precision=fp16 needs a CUDA GPU (it uses a loss scaler); on CPU use bf16 or fp32"
        )
    mp = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[t.precision]
    if t.threads > 0:
        torch.set_num_threads(t.threads)
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        # Accelerate keeps one state per process; a second run in the same process (the Python
        # API, benchmarks comparing fp32 with bf16) may ask for another precision or device
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
    return Accelerator(cpu=on_cpu, mixed_precision=mp)


def lr_lambda(steps: int, decay_start: int | None) -> Callable[[int], float]:
    """Constant, then linear decay to 0 at `steps` (CycleGAN/StarGAN style)."""

    def f(step: int) -> float:
        if decay_start is None or step < decay_start:
            return 1.0
        return max(0.0, 1.0 - (step - decay_start) / float(steps - decay_start))

    return f


def schedulers(optims: dict[str, torch.optim.Optimizer], t: TrainConfig) -> dict[str, Any]:
    """One `lr_lambda` schedule per optimizer, stepped once per training step."""
    sched = torch.optim.lr_scheduler.LambdaLR
    return {k: sched(o, lr_lambda(t.steps, t.decay_start)) for k, o in optims.items()}


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


# what gloo, NCCL and the TCP store say when a peer process has gone away
_PEER_GONE = (
    "connection reset by peer",
    "connection closed by peer",
    "broken pipe",
    "connection refused",
    "gloo",
    "nccl",
    "socket timeout",
    "timed out",
)


def lost_peer(e: RuntimeError) -> bool:
    """Does `e` say that another rank of the process group stopped or was killed?"""
    text = f"{type(e).__name__} {e}".lower()
    return "distbackenderror" in text or any(marker in text for marker in _PEER_GONE)
