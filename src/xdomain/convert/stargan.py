"""yunjey/stargan checkpoints (`<iter>-G.ckpt`, `<iter>-D.ckpt`: `torch.save(net.state_dict())`)
-> our `StarGenerator` / `StarDiscriminator`, whose keys are the official ones, so nothing is
renamed: the shapes tell the constructor arguments.

- G: `main.0.weight` (conv_dim, C + c_dim, 7, 7) gives conv_dim and c_dim (C is 3); the
  residual blocks are `main.<i>.main.0.weight`.
- D: `main.<2j>.weight` for j < repeat_num; `conv2.weight` (c_dim, d 2**(n-1), k, k) has the
  kernel image_size / 2**repeat_num, which gives the image size.

Which labels a c_dim means is the official's: 5 the CelebA model of the paper (black, blond,
brown hair, male, young), 8 RaFD's expressions, 15 = 5 + 8 + 2 the CelebA + RaFD model with the
mask vector; another c_dim needs `--attrs` (CelebA attribute names).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from xdomain.convert.common import (
    DEFAULT_SOURCE,
    as_state_dict,
    conv_weight,
    load_weights_only,
    strip_data_parallel,
)
from xdomain.convert.registry import Network, Reader, Shapes
from xdomain.data.types import DataSpec
from xdomain.errors import CheckpointError, XDomainError
from xdomain.labels import (
    CELEBA_PAPER_ATTRS,
    RAFD_EXPRESSIONS,
    LabelSpace,
    categorical_schema,
    celeba_schema,
)

WHAT = "a StarGAN network (yunjey/stargan state_dict)"


def read_official(path: str | Path) -> dict[str, Tensor]:
    p = Path(path)
    return strip_data_parallel(as_state_dict(load_weights_only(p, what=WHAT), p, WHAT))


def is_generator(state: Mapping[str, Tensor]) -> bool:
    return "conv1.weight" not in state


def infer_generator(state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE) -> dict[str, Any]:
    w = conv_weight(state, "main.0.weight", source, "a StarGAN generator", "the 7x7 stem")
    if w.shape[-1] != 7:
        raise CheckpointError(
            f"{source}: main.0.weight is {w.shape[-1]}x{w.shape[-1]}, not the generator's 7x7"
            " stem; pass a -G.ckpt file"
        )
    blocks = {int(m[1]) for k in state if (m := re.match(r"main\.(\d+)\.main\.0\.weight$", k))}
    return {"conv_dim": int(w.shape[0]), "c_dim": int(w.shape[1]) - 3, "repeat_num": len(blocks)}


def infer_discriminator(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Any]:
    cls = conv_weight(state, "conv2.weight", source, "a StarGAN discriminator", "D_cls")
    first = conv_weight(state, "main.0.weight", source, "a StarGAN discriminator", "the first conv")
    repeat = len([k for k in state if re.match(r"main\.\d+\.weight$", k)])
    return {
        "conv_dim": int(first.shape[0]),
        "c_dim": int(cls.shape[0]),
        "repeat_num": repeat,
        "image_size": int(cls.shape[-1]) * 2**repeat,
    }


def label_space(c_dim: int, attrs: Sequence[str] = ()) -> LabelSpace:
    """The official label layout of a model with `c_dim` generator inputs (module docstring)."""
    rafd = categorical_schema("rafd", "expression", RAFD_EXPRESSIONS)
    if attrs:
        schema, _ = celeba_schema(list(attrs))
        if schema.width != c_dim:
            raise CheckpointError(
                f"--attrs {','.join(attrs)} makes {schema.width} labels; the generator takes"
                f" {c_dim}: name {c_dim} CelebA attributes"
            )
        return LabelSpace((schema,))
    celeba, _ = celeba_schema(CELEBA_PAPER_ATTRS)
    known = {5: (celeba,), 8: (rafd,), 15: (celeba, rafd)}
    if c_dim not in known:
        raise CheckpointError(
            f"the generator takes c_dim={c_dim} labels, not one of the official models' 5"
            " (CelebA), 8 (RaFD) or 15 (both, mask vector); name its CelebA attributes with"
            " --attrs Black_Hair,Blond_Hair,..."
        )
    return LabelSpace(known[c_dim])


# ------------------------------------------------------------------------- --from stargan


def _read_stargan(path: Path) -> list[Network]:
    """`<iter>-G.ckpt` -> G, `<iter>-D.ckpt` -> D, told apart by their keys."""
    st, src = read_official(path), str(path)
    if is_generator(st):
        return [("G", st, infer_generator(st, source=src))]
    return [("D", st, infer_discriminator(st, source=src))]


def _stargan_config(cls: Callable[..., Any], shapes: Shapes) -> tuple[Any, DataSpec]:
    g, d = shapes.g, shapes.d
    space = label_space(g["c_dim"], shapes.attrs)
    if d and d["c_dim"] != space.cls_dim:
        raise XDomainError(
            f"the D file classifies {d['c_dim']} labels, the G file's model"
            f" {space.cls_dim}: give the G and D of one run"
        )
    model = cls(
        g_conv_dim=g["conv_dim"],
        g_repeat_num=g["repeat_num"],
        d_conv_dim=d.get("conv_dim", 64),
        d_repeat_num=d.get("repeat_num", 6),
    )
    size = int(d.get("image_size", 128))  # the official models are 128 px
    return model, DataSpec(kind="image", channels=3, image_size=size, labels=space.to_list())


READERS = {"stargan": Reader(_read_stargan, _stargan_config)}
