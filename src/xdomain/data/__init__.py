"""Data layer: embedded sources (no download) and user folders, all as `DomainDataset`s.

`load_domain(spec, split)` is the one entry point; `folder_layout` and `domain_folders` find the
folders of the layouts users already have; `read_image` and `convert_image` apply the same
explicit conversions to single files (translate, inference). The 2-D toy mixtures live in
`xdomain.data.toy`.
"""

from xdomain.data.dataset import DomainDataset
from xdomain.data.folders import domain_folders, folder_layout
from xdomain.data.images import convert_image, read_image
from xdomain.data.sources import EMBEDDED, load_domain

__all__ = [
    "EMBEDDED",
    "DomainDataset",
    "convert_image",
    "domain_folders",
    "folder_layout",
    "load_domain",
    "read_image",
]
