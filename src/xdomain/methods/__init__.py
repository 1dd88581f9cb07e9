"""The method registry: `METHODS[name]` is a `Method` subclass whose `Config` holds its defaults."""

from xdomain.methods.base import Batch, DataSpec, Method
from xdomain.methods.bicyclegan import BicycleGAN
from xdomain.methods.cyclegan import CycleGAN
from xdomain.methods.discogan import DiscoGAN
from xdomain.methods.dtn import DTN
from xdomain.methods.morph_ugatit import MorphUGATIT
from xdomain.methods.pix2pix import Pix2Pix
from xdomain.methods.stargan import StarGAN
from xdomain.methods.ugatit import UGATIT

METHODS: dict[str, type[Method]] = {
    "dtn": DTN,
    "discogan": DiscoGAN,
    "cyclegan": CycleGAN,
    "ugatit": UGATIT,
    "morph_ugatit": MorphUGATIT,
    "stargan": StarGAN,
    "pix2pix": Pix2Pix,
    "bicyclegan": BicycleGAN,
}

__all__ = ["METHODS", "Batch", "DataSpec", "Method"]
