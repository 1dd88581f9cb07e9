"""What `translate` accepts, checked and converted in one place: tensors in [-1, 1] of the
method's shape, PIL images (converted by the training data's own rule) and, back, PIL images
from output tensors. Every misuse is a one-line error that says how to convert.

`Method.translate`, `xdomain translate`, evaluation and the exporters all go through these
functions (via `Method.translate`), so a file translated anywhere is seen as a training image of
the same file was.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

from xdomain.data.types import DataSpec
from xdomain.errors import XDomainError

INPUT_HELP = (
    "translate takes a torch tensor in [-1, 1] ((C, H, W) or (B, C, H, W)), a PIL image or a"
    " list of PIL images; got {got} (numpy HxWxC uint8: PIL.Image.fromarray(a); a list of"
    " tensors: torch.stack(list))"
)


def describe(x: Any) -> str:
    """`x`'s type as a message shows it (`a list of Tensor`, `a numpy.ndarray`)."""
    if isinstance(x, (list, tuple)):
        inner = {type(v).__name__ for v in x}
        return f"a {type(x).__name__} of {', '.join(sorted(inner)) or 'nothing'}"
    return f"a {type(x).__module__}.{type(x).__name__}"


def as_images(x: Any, what: str = "translate") -> list[Any] | None:
    """A PIL image or a list of them -> that list; a tensor -> None; else a one-line error."""
    from PIL import Image

    if isinstance(x, Tensor):
        return None
    images = [x] if isinstance(x, Image.Image) else x
    if isinstance(images, (list, tuple)) and all(isinstance(im, Image.Image) for im in images):
        return list(images)
    raise XDomainError(INPUT_HELP.replace("translate", what, 1).format(got=describe(x)))


def to_batch(x: Any, spec: DataSpec, what: str = "translate") -> Tensor:
    """A tensor (returned as it is, checked later), a PIL image or a list of PIL images ->
    tensors, PIL images converted by the `crop` rule; anything else is a one-line error."""
    images = as_images(x, what)
    if images is None:
        return x
    if not images:
        return torch.zeros(0, spec.channels, spec.image_size, spec.image_size)
    return torch.stack([pil_to_tensor(im, spec) for im in images])


def check_tensor(x: Tensor, spec: DataSpec, *, any_size: bool) -> tuple[Tensor, bool]:
    """A tensor input -> (a batch, was it one item); every misuse is a one-line error.
    `any_size`: a fully convolutional method takes (C, H, W) of any H, W >= 8."""
    if x.is_floating_point() is False:
        raise XDomainError(
            f"translate got a {x.dtype} tensor; give floats in [-1, 1]"
            " (for uint8 pixels: x.float() / 127.5 - 1)"
        )
    if spec.kind == "points":
        if x.dim() not in (1, 2) or x.shape[-1] != spec.dims:
            raise XDomainError(
                f"translate got shape {tuple(x.shape)}; this method takes ({spec.dims},) or"
                f" (N, {spec.dims}) points"
            )
        single = x.dim() == 1
    elif any_size:
        c = spec.channels
        if x.dim() not in (3, 4) or x.shape[-3] != c or min(x.shape[-2:]) < 8:
            raise XDomainError(
                f"translate got shape {tuple(x.shape)}; this method takes ({c}, H, W)"
                f" or (B, {c}, H, W) tensors in [-1, 1] with H, W >= 8"
            )
        single = x.dim() == 3
    else:
        want = (spec.channels, spec.image_size, spec.image_size)
        if x.dim() not in (3, 4) or tuple(x.shape[-3:]) != want:
            raise XDomainError(
                f"translate got shape {tuple(x.shape)}; this method takes {want} or"
                f" (B, {', '.join(map(str, want))}) tensors in [-1, 1] (pass PIL images to"
                " have them resized and converted)"
            )
        single = x.dim() == 3
    if x.numel() and not torch.isfinite(x).all():
        raise XDomainError("translate got NaN or infinite values in its input")
    if spec.kind == "image" and x.numel():
        lo, hi = float(x.min()), float(x.max())
        if lo < -1.001 or hi > 1.001:
            raise XDomainError(
                f"translate got values in [{lo:.3g}, {hi:.3g}]; images are tensors in"
                " [-1, 1] (from [0, 1]: x * 2 - 1; from 0..255: x / 127.5 - 1)"
            )
        if lo >= 0 and hi > lo:
            # real images in [-1, 1] all but never lack negative values (darker than grey);
            # a warning, not an error: a bright image is legal
            warnings.warn(
                f"translate got values in [{lo:.3g}, {hi:.3g}], all >= 0: images are"
                " expected in [-1, 1]; if yours are in [0, 1], pass x * 2 - 1",
                stacklevel=6,  # the caller of Method.translate (through no_grad)
            )
    return (x.unsqueeze(0) if single else x), single


def pil_to_tensor(image: Any, spec: DataSpec, preprocess: str = "crop") -> Tensor:
    """A PIL image -> (C, H, W) float in [-1, 1] at the method's size and channel count.

    The same conversion and `fit_square` rule as the training data (`xdomain.data.images`), so
    a file translated here is seen exactly as a training image of the same file was.
    `preprocess="none"` keeps the image's own size (for `any_size` methods).
    """
    from xdomain.data.dataset import to_channels
    from xdomain.data.images import BadImage, fit_square, to_pixels

    try:
        pixels = to_channels(to_pixels(image), spec.channels)
    except BadImage as e:
        raise XDomainError(f"cannot convert image: {e.reason}") from None
    if preprocess == "none":
        arr = pixels.astype(np.float32)  # (H, W, C) as given
    else:
        arr = fit_square(pixels, spec.image_size, preprocess).astype(np.float32)  # (S, S, C)
    return torch.from_numpy(arr).permute(2, 0, 1) / 127.5 - 1.0


def tensor_to_pil(t: Tensor) -> Any:
    """(C, H, W) in [-1, 1] -> a PIL image (L for one channel, RGB for three); (K, C, H, W),
    K outputs of one input, side by side."""
    from PIL import Image

    if t.dim() == 4:
        t = torch.cat(list(t), dim=2)
    arr = ((t.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu()
    arr = arr.numpy()
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
