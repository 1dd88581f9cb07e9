"""The one contract every method follows.

A method is an `nn.Module` holding its networks and optimizers. It owns its update order (D then G,
n_critic, G six times per D step, f fine-tuning ...) inside `train_step`, and calls `self.update`
for each optimizer step so that it never touches devices, precision scalers or processes itself.
The Trainer knows nothing about any single method.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn

from xdomain.errors import NonFiniteLossError, XDomainError

Batch = dict[str, Tensor]  # unpaired: a, b (+ a_label, b_label); labelled: x, label; paired: a, b


@dataclass
class DataSpec:
    """What a method needs to know about its data to build its networks (saved with checkpoints)."""

    kind: Literal["image", "points"] = "image"
    channels: int = 3
    image_size: int = 32
    dims: int = 2  # points only
    num_classes_a: int = 0  # 0: the domain has no labels
    num_classes_b: int = 0
    name_a: str = "a"
    name_b: str = "b"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Method(nn.Module):
    """Base class: subclasses set `Config`, build networks and optimizers in `__init__`."""

    Config: ClassVar[type]
    #: the optional `translate` arguments this method understands; others are an error
    translate_options: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, cfg: Any, spec: DataSpec) -> None:
        super().__init__()
        self.cfg = cfg
        self.spec = spec
        self.accelerator: Any = None  # set by the Trainer (accelerate.Accelerator)

    # ------------------------------------------------------------------ to implement
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Named optimizers, for the lr schedule and checkpoints."""
        raise NotImplementedError

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        """One training iteration in the method's own update order; returns losses to log."""
        raise NotImplementedError

    def generate(
        self, x: Tensor, *, target: Any = None, z: Any = None, alpha: Any = None
    ) -> Tensor:
        """(B, C, H, W) in [-1, 1] -> translated (B, C, H, W), or (B, K, C, H, W) for several z."""
        raise NotImplementedError

    def setup(self, data: Any) -> None:
        """A method's phase before the GAN loop (e.g. DTN pretrains f); must be deterministic."""

    def visualize(self, fixed: Batch, path: Path) -> None:
        """Write a PNG of fixed held-out inputs and their translations (rows: input, output)."""
        from xdomain.report import save_grid

        x = fixed["a"]
        y = self.translate(x)
        save_grid([x, y], path)

    # ------------------------------------------------------------------ shared machinery
    def attach(self, accelerator: Any) -> None:
        self.accelerator = accelerator

    def update(
        self,
        opt: torch.optim.Optimizer,
        loss: Tensor,
        *,
        retain_graph: bool = False,
        params: Iterator[nn.Parameter] | None = None,
    ) -> None:
        """zero_grad -> backward (scaled under fp16) -> average grads over processes -> step.

        Gradients are averaged here rather than by wrapping networks in DDP: GAN methods call the
        same D several times per step and backpropagate several losses, which DDP's one-forward-
        one-backward bookkeeping does not fit. `params` restricts the all-reduce (default: the
        optimizer's parameters).
        """
        if not torch.isfinite(loss.detach()).all():
            raise NonFiniteLossError(
                f"loss is {loss.item()} at this step: training diverged; lower the learning "
                "rate or use precision=fp32; the last good checkpoint is kept"
            )
        opt.zero_grad(set_to_none=True)
        acc = self.accelerator
        if acc is None:
            loss.backward(retain_graph=retain_graph)
            opt.step()
            return
        acc.backward(loss, retain_graph=retain_graph)
        if acc.num_processes > 1:
            plist = (
                list(params)
                if params is not None
                else [p for g in opt.param_groups for p in g["params"]]
            )
            grads = [p.grad for p in plist if p.grad is not None]
            if grads:
                flat = torch.cat([g.reshape(-1) for g in grads])
                flat = acc.reduce(flat, reduction="mean")
                offset = 0
                for g in grads:
                    g.copy_(flat[offset : offset + g.numel()].view_as(g))
                    offset += g.numel()
        scaler = getattr(acc, "scaler", None)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()

    @staticmethod
    def requires_grad(*nets: nn.Module, flag: bool) -> None:
        for net in nets:
            for p in net.parameters():
                p.requires_grad_(flag)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def translate(self, x: Any, *, target: Any = None, z: Any = None, alpha: Any = None) -> Any:
        """Translate tensors in [-1, 1] ((C,H,W) or (B,C,H,W)) or PIL images (one or a list).

        Returns the same kind it was given. `target`, `z` and `alpha` are accepted only by methods
        that have that notion; passing one to a method without it is an error, not a silent ignore.
        """
        given = {"target": target, "z": z, "alpha": alpha}
        for name, value in given.items():
            if value is not None and name not in self.translate_options:
                valid = ", ".join(sorted(self.translate_options)) or "none"
                raise XDomainError(
                    f"{type(self).__name__}.translate does not take '{name}' "
                    f"(this method's options: {valid})"
                )
        was_training = self.training
        self.eval()
        try:
            if isinstance(x, Tensor):
                single = x.dim() == (1 if self.spec.kind == "points" else 3)
                xb = x.unsqueeze(0) if single else x
                device = next(self.parameters()).device
                y = self.generate(xb.to(device, torch.float32), target=target, z=z, alpha=alpha)
                y = y.to(x.device)
                return y[0] if single else y
            from PIL import Image

            images = [x] if isinstance(x, Image.Image) else list(x)
            tensors = torch.stack([pil_to_tensor(im, self.spec) for im in images])
            y = self.translate(tensors, target=target, z=z, alpha=alpha)
            out = [tensor_to_pil(t) for t in y]
            return out[0] if isinstance(x, Image.Image) else out
        finally:
            self.train(was_training)


def pil_to_tensor(image: Any, spec: DataSpec) -> Tensor:
    """A PIL image -> (C, H, W) float in [-1, 1] at the method's size and channel count."""
    from PIL import Image

    from xdomain.data import convert_image

    image = convert_image(image, spec.channels)
    w, h = image.size
    s = spec.image_size / min(w, h)
    image = image.resize(
        (max(spec.image_size, round(w * s)), max(spec.image_size, round(h * s))),
        Image.Resampling.BICUBIC,
    )
    w, h = image.size
    left, top = (w - spec.image_size) // 2, (h - spec.image_size) // 2
    image = image.crop((left, top, left + spec.image_size, top + spec.image_size))
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr).permute(2, 0, 1) / 127.5 - 1.0


def tensor_to_pil(t: Tensor) -> Any:
    """(C, H, W) in [-1, 1] -> a PIL image (L for one channel, RGB for three)."""
    from PIL import Image

    if t.dim() == 4:  # several samples of one input (z): tile them side by side
        t = torch.cat(list(t), dim=2)
    arr = ((t.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu()
    arr = arr.numpy()
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)


def check_finite(logs: dict[str, float], step: int) -> None:
    bad = {k: v for k, v in logs.items() if not math.isfinite(v)}
    if bad:
        k, v = next(iter(bad.items()))
        raise NonFiniteLossError(
            f"step {step}: {k} = {v}: training diverged; lower the learning rate or use "
            "train.precision=fp32; the last good checkpoint is kept"
        )
