"""The fixed sections of a run config: `data`, `train` and `eval` (their defaults, types and
ranges). Foundations: the data layer builds from `DataConfig` without knowing any method."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from xdomain.schema import NonNegative, Positive, Range, SeedRange

Precision = Literal["fp32", "bf16", "fp16"]


@dataclass
class DataConfig:
    """Where the two domains come from and how batches are made."""

    a: str = "digits-printed"  # an embedded source name or a folder of images (domain a)
    b: str = "digits-handwritten"  # the same for domain b
    root: str = ""  # an unpaired `trainA/ trainB/ testA/ testB/` folder; overrides a and b
    image_size: Annotated[int, Range(8)] = 32
    channels: int = 3  # 1 or 3 (checked in `validate`)
    batch_size: Annotated[int, Positive] = 64
    # DataLoader worker processes (folders benefit; embedded data is in memory)
    num_workers: Annotated[int, NonNegative] = 0
    augment: bool = False  # random flip + crop for folder sources (reproducible per step)
    on_bad_file: Literal["error", "skip"] = "error"
    # larger images are refused before decoding (decompression bombs)
    max_pixels: Annotated[int, Positive] = 50_000_000
    seed: Annotated[int, SeedRange] = 0  # the data seed: rendering and splits, fixed across runs
    # cap the training set sizes (None: the source's default)
    n_a: Annotated[int, Positive] | None = None
    n_b: Annotated[int, Positive] | None = None
    # font families (comma list, as in data/fonts-manifest.json) kept out of domain a's training
    # and validation items; evaluation then also scores the test digits in those fonts apart
    # (`acc_heldout_fonts`): how a model does on fonts it never saw. digits-printed only.
    holdout_fonts: str = ""
    # labelled data sets (StarGAN; replaces a and b): each a built-in name (digits-styled,
    # digits-handwritten), celeba:<root> or folders:<root>; two or more train with the mask
    # vector, one batch of each per step (`xdomain.data.labelled`)
    sources: list[str] = field(default_factory=list)
    # per source of data.sources: crop the central N x N pixels of a folder's images before
    # the fit to image_size (the official StarGAN crops CelebA to 178, RaFD to 256); 0 or a
    # missing entry: no crop
    center_crop: list[int] = field(default_factory=list)
    # the CelebA attributes to train on (file column names), for a celeba:<root> source
    celeba_attrs: list[str] = field(
        default_factory=lambda: ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    )
    # aligned pairs (pix2pix, BicycleGAN; replaces a and b): glyphs2digits,
    # edges2fashion[:<classes>], a folder of aligned AB images (train/, test/ or val/) or of
    # trainA/ trainB/ testA/ testB/ files paired by name (`xdomain.data.paired`)
    paired: str = ""
    direction: Literal["AtoB", "BtoA"] = "AtoB"  # BtoA: translate the right half to the left


@dataclass
class TrainConfig:
    """The loop: length, precision, schedule and how often to log, sample, evaluate and save."""

    steps: Annotated[int, Positive] = 10_000
    # lr constant until this step, then linear to 0 (papers' schedule); < steps
    decay_start: Annotated[int, NonNegative] | None = None
    precision: Precision = "fp32"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Annotated[int, NonNegative] = 0  # torch intra-op threads on CPU (0: torch's default)
    log_every: Annotated[int, Positive] = 20
    sample_every: Annotated[int, Positive] = 500
    ckpt_every: Annotated[int, Positive] = 500
    keep_last: Annotated[int, Range(1)] = 3  # checkpoints kept besides `best`
    progress: bool = True


@dataclass
class EvalConfig:
    """Periodic evaluation on held-out data; `select` picks the `best` checkpoint."""

    every: Annotated[int, Positive] = 500
    # held-out items translated per evaluation (the whole test split if smaller)
    n_test: Annotated[int, Positive] = 2000
    select: str = ""  # metric that picks the `best` checkpoint (e.g. `val_acc`); empty: none
    select_mode: Literal["max", "min"] = "max"
    # items of a validation split, for `val_*` metrics used in selection (0: none)
    n_val: Annotated[int, NonNegative] = 1000


def data_kind(cfg: DataConfig) -> Literal["image", "points"]:
    """`points` for the 2-D toy mixtures, `image` for everything else."""
    return "points" if cfg.a.startswith("toy-gmm") else "image"
