"""The image history pool (Shrivastava et al. 2017), as CycleGAN uses it for its discriminators.

D is shown a mix of the newest fakes and fakes from earlier generator versions, so it does not
only chase the generator's latest mode. Each incoming image, once the pool is full, is with
probability 1/2 returned as is, otherwise swapped with a random stored one (which is returned).

The pool is training state that is not in any `state_dict`: `state()` / `load_state()` let the
method hand it to the checkpoint (`Method.train_state`), and its random draws come from the
global torch RNG (saved with every checkpoint), so a resumed run continues bit-exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor


class ImagePool:
    """Up to `size` past fakes; `size=0` turns the pool off (every query returns its input)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[Tensor] = []  # each (C, H, W), detached

    def query(self, fakes: Tensor) -> Tensor:
        """(B, C, H, W) new fakes -> (B, C, H, W) fakes for D (detached)."""
        fakes = fakes.detach()
        if self.size == 0:
            return fakes
        out = []
        for img in fakes:
            if len(self.images) < self.size:  # filling up: keep it and show it
                self.images.append(img.clone())
                out.append(img)
            elif float(torch.rand(())) < 0.5:  # show an older fake, keep the new one
                i = int(torch.randint(0, self.size, ()))
                out.append(self.images[i].clone())
                self.images[i] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state(self) -> Tensor:
        """The stored fakes as one (N, C, H, W) tensor (N = 0 for an empty pool)."""
        if not self.images:
            return torch.zeros(0)
        return torch.stack(self.images)

    def load_state(self, images: Tensor, device: torch.device | str) -> None:
        if images.numel() and len(images) > self.size:
            raise ValueError(
                f"pool state holds {len(images)} images, more than its size {self.size}"
            )
        self.images = [im.to(device) for im in images] if images.numel() else []


class HistoryPools:
    """For a method with history pools of past fakes (`pool_a`, `pool_b`: `xdomain.nn.pool`) in
    front of its discriminators: the pools are training state outside `state_dict`, so this
    mixin saves them with every checkpoint and restores them on resume. List it before
    `Method`: `class CycleGAN(HistoryPools, Method)`."""

    pool_a: ImagePool
    pool_b: ImagePool

    def train_state(self) -> dict[str, Tensor]:
        return {"pool_a": self.pool_a.state(), "pool_b": self.pool_b.state()}

    def load_train_state(self, tensors: dict[str, Tensor]) -> None:
        device = next(self.parameters()).device  # type: ignore[attr-defined]
        self.pool_a.load_state(tensors.get("pool_a", torch.zeros(0)), device)
        self.pool_b.load_state(tensors.get("pool_b", torch.zeros(0)), device)
