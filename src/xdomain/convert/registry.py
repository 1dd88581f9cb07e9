"""Which official code bases `xdomain convert --from` reads: one `Converter` per `--from` name.

This table imports nothing heavy: the CLI renders `--from`'s choices and help from it without
torch. What a converter does lives in its repository module, beside the key converters it
uses, as that module's `READERS[name]` (a `Reader`): `read(path)` turns one official file into
our networks (name, our state_dict, constructor kwargs), and `model_config(cls, shapes)`
builds the method's Config and DataSpec from what the files told. `xdomain.convert.official`
collects every module's READERS (a test checks they match this table) and runs any of them the
same way, naming none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xdomain.errors import XDomainError

if TYPE_CHECKING:
    from torch import Tensor

    from xdomain.data.types import DataSpec

# one network read from an official file: (our network name, our state_dict, ctor kwargs)
Network = tuple[str, "dict[str, Tensor]", dict[str, Any]]


@dataclass(frozen=True)
class Shapes:
    """What the files told of the networks' architecture, to build the method's Config from."""

    nets: Mapping[str, Mapping[str, Any]]  # constructor kwargs by network name, in read order
    attrs: Sequence[str] = ()  # --attrs: the labels of a model whose files do not tell them

    @property
    def g(self) -> Mapping[str, Any]:
        """The first generator read (every conversion has one)."""
        return self.first("G")

    @property
    def d(self) -> Mapping[str, Any]:
        """The first discriminator read, or {}: its Config fields then keep their defaults."""
        return self.first("D")

    def first(self, prefix: str) -> Mapping[str, Any]:
        """The kwargs of the first network whose name starts with `prefix`, or {}."""
        return next((kw for name, kw in self.nets.items() if name.startswith(prefix)), {})

    def get(self, name: str) -> Mapping[str, Any]:
        """The kwargs of network `name` (D_a, E ...), or {} when no file held it."""
        return self.nets.get(name, {})


@dataclass(frozen=True)
class Reader:
    """What one converter does (defined in its repository module)."""

    read: Callable[[Path], list[Network]]
    # (the method's Config class, what the files told) -> (Config, DataSpec)
    model_config: Callable[[Callable[..., Any], Shapes], tuple[Any, DataSpec]]


@dataclass(frozen=True)
class Converter:
    name: str  # the `--from` value
    repository: str  # the official code base whose files it reads
    method: str  # the xdomain method it fills (a key of xdomain.methods.METHODS)
    files: str  # one line for --help: which files it takes
    attrs: str = ""  # what --attrs tells it, for --help; "" when it reads no labels


CONVERTERS: dict[str, Converter] = {
    c.name: c
    for c in (
        Converter(
            "cyclegan",
            "junyanz/pytorch-CycleGAN-and-pix2pix",
            "cyclegan",
            "one generator such as horse2zebra.pth, or latest_net_G_A, _G_B, _D_A, _D_B.pth",
        ),
        Converter(
            "discogan",
            "SKTBrain/DiscoGAN",
            "discogan",
            "model_gen_A-5, model_gen_B-5, model_dis_A-5, model_dis_B-5",
        ),
        Converter(
            "ugatit",
            "znxlwm/UGATIT-pytorch",
            "ugatit",
            "one file of six nets, <dataset>_params_latest.pt",
        ),
        Converter(
            "morph-ugatit",
            "shoutOutYangJie/Morph-UGATIT",
            "morph_ugatit",
            "one file of G, D_A, D_B",
        ),
        Converter(
            "stargan",
            "yunjey/stargan",
            "stargan",
            "200000-G.ckpt and optionally 200000-D.ckpt",
            "the CelebA attributes (comma list, file column names) of a model whose c_dim is"
            " not an official one (5 CelebA, 8 RaFD, 15 both)",
        ),
        Converter(
            "pix2pix",
            "junyanz/pytorch-CycleGAN-and-pix2pix",
            "pix2pix",
            "latest_net_G.pth, latest_net_D.pth",
        ),
        Converter(
            "bicyclegan",
            "junyanz/BicycleGAN",
            "bicyclegan",
            "latest_net_G.pth, _E, _D, _D2",
        ),
    )
}


def get(name: str) -> Converter:
    """The converter for `--from name`, or a one-line error listing the valid names."""
    if name not in CONVERTERS:
        raise XDomainError(f"--from {name!r} is unknown; valid: {', '.join(CONVERTERS)}")
    return CONVERTERS[name]


def help_text() -> str:
    """`--from`'s help: whose code wrote the files, and which files each converter takes."""
    return "whose code wrote the files: " + "; ".join(
        f"{c.repository} ({c.name}: {c.files})" for c in CONVERTERS.values()
    )


def attrs_help() -> str:
    """`--attrs`' help: what it tells each converter that reads labels."""
    return "; ".join(f"{c.name}: {c.attrs}" for c in CONVERTERS.values() if c.attrs)
