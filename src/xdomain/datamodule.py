"""From a DataConfig to deterministic training streams and held-out sets.

A training batch is a pure function of (data seed, domain, step): indices come from a per-epoch
permutation seeded by (seed, domain, epoch), augmentation seeds from (seed, domain, step, slot).
So a run resumed at step N sees exactly the batches the uninterrupted run saw, with any number of
DataLoader workers, and process r of W takes slice r of the same global batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from xdomain.data.types import Batch, DataSpec
from xdomain.errors import ConfigError, DataError
from xdomain.sections import DataConfig, data_kind


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


class StepSampler(Sampler):
    """Yields, for step = start, start+1, ..., the list of (index, aug_seed) keys of one batch."""

    def __init__(
        self,
        indices: int,
        batch_size: int,
        *,
        seed: int,
        domain: int,
        start_step: int = 0,
        rank: int = 0,
        world: int = 1,
        aug_seeds: bool = True,
    ) -> None:
        self.n, self.batch_size, self.seed, self.domain = indices, batch_size, seed, domain
        # a source that never augments ignores the seed; skipping it saves a SeedSequence per item
        self.aug_seeds = aug_seeds
        self.start_step, self.rank, self.world = start_step, rank, world
        self._perm_epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(_seed(self.seed, self.domain, epoch))
            self._perm, self._perm_epoch = torch.randperm(self.n, generator=g), epoch
        return self._perm

    def keys(self, step: int) -> list[tuple[int, int]]:
        global_b = self.batch_size * self.world
        first = step * global_b + self.rank * self.batch_size
        out = []
        for slot, pos in enumerate(range(first, first + self.batch_size)):
            idx = int(self._permutation(pos // self.n)[pos % self.n])
            aug = _seed(self.seed, self.domain, step, self.rank, slot) if self.aug_seeds else None
            out.append((idx, aug))
        return out

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start_step
        while True:
            yield self.keys(step)
            step += 1


class _Head(Dataset):
    """The first `n` items of a dataset (the tail is held out for validation)."""

    def __init__(self, ds: Any, n: int) -> None:
        self.ds, self.n = ds, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: Any) -> Any:
        return self.ds[key]

    def __getitems__(self, keys: list[Any]) -> list[Any]:
        # forward DataLoader's batched fetch to sources that gather a batch at once (the toy)
        fetch = getattr(self.ds, "__getitems__", None)
        return fetch(keys) if fetch is not None else [self.ds[k] for k in keys]


def step_loader(
    ds: Any, n: int, domain: int, c: DataConfig, *, start_step: int, rank: int, world: int
) -> DataLoader:
    """The batches of the first n items of `ds`, as source `domain` of the data seed, from
    `start_step` on (`StepSampler`), through `num_workers` DataLoader workers."""
    sampler = StepSampler(
        n,
        c.batch_size,
        seed=c.seed,
        domain=domain,
        start_step=start_step,
        rank=rank,
        world=world,
        aug_seeds=bool(getattr(ds, "augment", True)),
    )
    return DataLoader(
        _Head(ds, n),
        batch_sampler=sampler,
        num_workers=c.num_workers,
        # its own generator: a DataLoader iterator otherwise draws its worker base seed from
        # the global RNG, which a resumed run would then replay differently
        generator=torch.Generator().manual_seed(_seed(c.seed, domain, start_step)),
        persistent_workers=c.num_workers > 0,
    )


@dataclass
class TwoDomainData:
    """Unpaired data: train/test sets of both domains, plus a validation tail of train a."""

    spec: DataSpec
    train_a: Any
    train_b: Any
    test_a: Any
    test_b: Any
    n_train_a: int  # items of train_a used for training; [n_train_a, len) is validation
    cfg: DataConfig

    def val_a(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.n_train_a >= len(self.train_a):
            return None
        x, y = self.train_a.tensors()
        return x[self.n_train_a :], y[self.n_train_a :]

    def stream(self, *, start_step: int = 0, rank: int = 0, world: int = 1) -> Iterator[Batch]:
        """Infinite batches {a, a_label, b, b_label} starting at `start_step`."""
        parts = [(self.train_a, self.n_train_a), (self.train_b, len(self.train_b))]
        loaders = [
            step_loader(ds, n, domain, self.cfg, start_step=start_step, rank=rank, world=world)
            for domain, (ds, n) in enumerate(parts)
        ]
        for (xa, ya), (xb, yb) in zip(*loaders, strict=True):
            yield {"a": xa, "a_label": ya, "b": xb, "b_label": yb}

    def fixed(self, n: int | None = None) -> Batch:
        """The first n held-out items of each domain (and their labels): the inputs of every
        sample grid. Points default to 500, enough for every mode of a toy figure; images to 8."""
        if n is None:
            n = 500 if self.spec.kind == "points" else 8
        out = {}
        for key, ds in (("a", self.test_a), ("b", self.test_b)):
            items = [ds[i] for i in range(min(n, len(ds)))]
            out[key] = torch.stack([x for x, _ in items])
            out[f"{key}_label"] = torch.tensor([y for _, y in items], dtype=torch.long)
        return out


@dataclass
class LabelledData:
    """Labelled data sets (StarGAN): train/test `LabelledSet`s of each source in `data.sources`.

    Every step draws one batch from every data set, each from its own step-indexed sampler, so
    the mask vector's alternation between data sets is the method's business and a resumed run
    sees the same batches. Batches are `{x<k>, label<k>}` for k = 0 .. n-1.
    """

    spec: DataSpec
    train: list[Any]  # LabelledSet per data set
    test: list[Any]
    cfg: DataConfig

    def stream(self, *, start_step: int = 0, rank: int = 0, world: int = 1) -> Iterator[Batch]:
        loaders = [
            step_loader(ds, len(ds), k, self.cfg, start_step=start_step, rank=rank, world=world)
            for k, ds in enumerate(self.train)
        ]
        for parts in zip(*loaders, strict=True):
            batch: Batch = {}
            for k, (x, y) in enumerate(parts):
                batch[f"x{k}"], batch[f"label{k}"] = x, y  # (B, C, S, S), (B, width_k)
            yield batch

    def fixed(self, n: int | None = None) -> Batch:
        """The first n (default 8) test items of each data set and their labels."""
        out: Batch = {}
        for k, ds in enumerate(self.test):
            items = [ds[i] for i in range(min(n or 8, len(ds)))]
            out[f"x{k}"] = torch.stack([x for x, _ in items])
            out[f"label{k}"] = torch.stack([y for _, y in items])
        return out


@dataclass
class PairedData:
    """Aligned pairs (pix2pix, BicycleGAN): train/test `PairedSet`s whose item i of a belongs
    with item i of b. One step-indexed sampler draws both sides, so a pair shares its index and
    its crop and flip. Batches are `{a, a_label, b, b_label}` like unpaired ones."""

    spec: DataSpec
    train: Any  # xdomain.data.paired.PairedSet
    test: Any
    cfg: DataConfig

    # the sides as domains, for what scores a -> b the unpaired way (judges, KID)
    @property
    def train_a(self) -> Any:
        return self.train.a

    @property
    def train_b(self) -> Any:
        return self.train.b

    @property
    def test_a(self) -> Any:
        return self.test.a

    @property
    def test_b(self) -> Any:
        return self.test.b

    def val_a(self) -> None:
        return None

    def stream(self, *, start_step: int = 0, rank: int = 0, world: int = 1) -> Iterator[Batch]:
        loader = step_loader(
            self.train, len(self.train), 0, self.cfg, start_step=start_step, rank=rank, world=world
        )
        for xa, ya, xb, yb in loader:
            yield {"a": xa, "a_label": ya, "b": xb, "b_label": yb}  # (B, C, S, S) each side

    def fixed(self, n: int | None = None) -> Batch:
        """The first n (default 8) test pairs."""
        items = [self.test[i] for i in range(min(n or 8, len(self.test)))]
        return {
            "a": torch.stack([it[0] for it in items]),
            "a_label": torch.tensor([it[1] for it in items], dtype=torch.long),
            "b": torch.stack([it[2] for it in items]),
            "b_label": torch.tensor([it[3] for it in items], dtype=torch.long),
        }


def build_paired(cfg: DataConfig) -> PairedData:
    """`data.paired` -> train and test `PairedSet`s (`xdomain.data.paired`)."""
    from xdomain.data.paired import load_paired

    kw = {
        "image_size": cfg.image_size,
        "channels": cfg.channels,
        "seed": cfg.seed,
        "on_bad_file": cfg.on_bad_file,
        "max_pixels": cfg.max_pixels,
        "direction": cfg.direction,
    }
    train = load_paired(cfg.paired, "train", augment=cfg.augment, n=cfg.n_a, **kw)
    test = load_paired(cfg.paired, "test", augment=False, n=None, **kw)
    if cfg.batch_size > len(train):
        raise ConfigError(
            f"data.batch_size={cfg.batch_size} is larger than '{cfg.paired}''s training set"
            f" ({len(train)} pairs); lower data.batch_size"
        )
    spec = DataSpec(
        kind="image",
        channels=cfg.channels,
        image_size=cfg.image_size,
        num_classes_a=train.a.num_classes,
        num_classes_b=train.b.num_classes,
        name_a=Path(train.a.name).name,
        name_b=Path(train.b.name).name,
    )
    return PairedData(spec, train, test, cfg)


def build_labelled(cfg: DataConfig) -> LabelledData:
    """`data.sources` -> train and test `LabelledSet`s and a spec holding their schemas."""
    from xdomain.data.sources import load_labelled
    from xdomain.labels import LabelSpace

    common = {
        "image_size": cfg.image_size,
        "channels": cfg.channels,
        "seed": cfg.seed,
        "on_bad_file": cfg.on_bad_file,
        "max_pixels": cfg.max_pixels,
        "celeba_attrs": cfg.celeba_attrs,
    }
    if len(set(cfg.sources)) != len(cfg.sources):
        raise ConfigError(f"data.sources names a data set twice: {cfg.sources}; list each once")
    if len(cfg.center_crop) > len(cfg.sources) or any(c < 0 for c in cfg.center_crop):
        raise ConfigError(
            f"data.center_crop={cfg.center_crop}: one size >= 0 per entry of data.sources"
            f" ({len(cfg.sources)}), 0 for no crop"
        )
    from xdomain.data.labelled import PREFIXES

    for k, crop in enumerate(cfg.center_crop):
        if crop and not str(cfg.sources[k]).startswith(PREFIXES):
            raise ConfigError(
                f"data.center_crop[{k}]={crop} does nothing for data set '{cfg.sources[k]}' (a"
                " built-in set is rendered at data.image_size); set it to 0 — a crop applies to"
                " celeba:DIR and folders:DIR sources"
            )
    train, test = [], []
    for k, source in enumerate(cfg.sources):
        n = cfg.n_a if k == 0 else cfg.n_b  # caps of the first and of the other data sets
        crop = cfg.center_crop[k] if k < len(cfg.center_crop) else 0
        kw = {**common, "center_crop": crop}
        train.append(load_labelled(source, "train", augment=cfg.augment, n=n, **kw))
        test.append(load_labelled(source, "test", augment=False, n=None, **kw))
        if cfg.batch_size > len(train[-1]):
            raise ConfigError(
                f"data.batch_size={cfg.batch_size} is larger than data set '{source}''s training"
                f" set ({len(train[-1])} images); lower data.batch_size"
            )
    names = [ds.schema.dataset for ds in train]
    if len(set(names)) != len(names):
        raise ConfigError(
            f"data.sources: two data sets are both named '{names[0]}'; give folders distinct names"
        )
    _check_targets_unambiguous(cfg.sources, [ds.schema for ds in train])
    space = LabelSpace(tuple(ds.schema for ds in train))
    spec = DataSpec(
        kind="image",
        channels=cfg.channels,
        image_size=cfg.image_size,
        name_a=names[0],
        name_b=names[-1],
        labels=space.to_list(),
    )
    return LabelledData(spec, train, test, cfg)


def _check_targets_unambiguous(sources: list[str], schemas: list[Any]) -> None:
    """Two data sets of one mask-vector model must not share an attribute and a value: a target
    `class=happy` has to say which data set it means (the mask is one-hot)."""
    for i, si in enumerate(schemas):
        for j in range(i + 1, len(schemas)):
            for a in si.attributes:
                b = next((x for x in schemas[j].attributes if x.name == a.name), None)
                common = sorted(a.spellings() & b.spellings()) if b is not None else []
                if common:
                    raise ConfigError(
                        f"data.sources: '{sources[i]}' and '{sources[j]}' both have"
                        f" {a.name}={common[0]}, so a target could not say which data set it"
                        " means; rename that class folder (or attribute) in one of them"
                    )


def _load(spec: str, split: str, cfg: DataConfig, n: int | None) -> Any:
    if spec.startswith("toy-gmm"):
        from xdomain.data.toy import load_toy

        return load_toy(spec, split, seed=cfg.seed, n=n)
    from xdomain.data import load_domain

    return load_domain(
        spec,
        split,
        image_size=cfg.image_size,
        channels=cfg.channels,
        seed=cfg.seed,
        on_bad_file=cfg.on_bad_file,
        max_pixels=cfg.max_pixels,
        augment=cfg.augment and split == "train",
        n=n,
    )


def heldout_fonts_mask(ds: Any, cfg: DataConfig) -> torch.Tensor:
    """bool (N,): the items of a digits-printed split drawn in `cfg.holdout_fonts`."""
    from xdomain.data.printed import heldout_items

    if cfg.root or cfg.a != "digits-printed":
        raise ConfigError(
            f"data.holdout_fonts needs data.a = digits-printed (its pinned fonts have known"
            f" families), not '{cfg.root or cfg.a}'; remove data.holdout_fonts"
        )
    mask = heldout_items(ds.attrs["font"].numpy(), ds.attr_names["font"], cfg.holdout_fonts)
    return torch.from_numpy(mask)


def _without_heldout_fonts(train_a: Any, cfg: DataConfig) -> Any:
    """Domain a's training (and validation) items minus those in the held-out font families."""
    held = heldout_fonts_mask(train_a, cfg)
    if bool(held.all()):
        raise ConfigError(
            f"data.holdout_fonts='{cfg.holdout_fonts}' holds out every training item; name fewer"
            " families"
        )
    return train_a.subset(~held)


def build_data(cfg: DataConfig, *, n_val: int = 0) -> TwoDomainData | LabelledData | PairedData:
    """Resolve both domains (embedded names, folders or an unpaired root) into datasets, or
    the labelled data sets of `data.sources`."""
    if cfg.sources:
        return build_labelled(cfg)
    if any(cfg.center_crop):
        raise ConfigError(
            f"data.center_crop={cfg.center_crop} applies to the labelled data sets of"
            " data.sources (celeba:DIR, folders:DIR) only; remove it, or crop the images"
            " beforehand"
        )
    if cfg.paired:
        return build_paired(cfg)
    if cfg.root:
        from xdomain.data import folder_layout

        layout = folder_layout(cfg.root)
        a_train, b_train, a_test, b_test = (
            layout["trainA"],
            layout["trainB"],
            layout["testA"],
            layout["testB"],
        )
    else:
        a_train = a_test = cfg.a
        b_train = b_test = cfg.b
        for s in (cfg.a, cfg.b):
            if not s:
                raise DataError("data.a and data.b must name a source or folder (or set data.root)")
    points = data_kind(cfg) == "points"
    train_a = _load(a_train, "train", cfg, cfg.n_a)
    if cfg.holdout_fonts:
        train_a = _without_heldout_fonts(train_a, cfg)
    train_b = _load(b_train, "train", cfg, cfg.n_b)
    n_train_a = len(train_a)
    if n_val > 0 and len(train_a) >= 4 * n_val:
        n_train_a = len(train_a) - n_val
    # before anything is sized by the batch: a batch larger than an epoch would make every
    # sampler step walk several permutations (and 10**12 never finishes)
    items = "points" if points else "images"
    for name, n in (("a", n_train_a), ("b", len(train_b))):
        if cfg.batch_size > n:
            raise ConfigError(
                f"data.batch_size={cfg.batch_size} is larger than domain {name}'s training set"
                f" ({n} {items}); lower data.batch_size"
            )
    test_a = _load(a_test, "test", cfg, None)
    test_b = _load(b_test, "test", cfg, None)
    spec = DataSpec(
        kind="points" if points else "image",
        channels=cfg.channels,
        image_size=cfg.image_size,
        num_classes_a=getattr(train_a, "num_classes", 0),
        num_classes_b=getattr(train_b, "num_classes", 0),
        name_a=Path(a_train).name if not points and Path(a_train).exists() else a_train,
        name_b=Path(b_train).name if not points and Path(b_train).exists() else b_train,
    )
    return TwoDomainData(spec, train_a, train_b, test_a, test_b, n_train_a, cfg)


def check_layout(method: str, layout: str, data: DataConfig) -> None:
    """The method's kind of data (`Method.layout`) against what `data` configures, before any
    data are built (rendering 20k digits to learn they are the wrong kind costs minutes)."""
    given = "labelled" if data.sources else "paired" if data.paired else "unpaired"
    if given == layout:
        return
    want = {
        "labelled": "labelled data sets: set data.sources (e.g. [digits-styled])",
        "paired": "aligned pairs: set data.paired (e.g. glyphs2digits, edges2fashion or a"
        " folder of AB images)",
        "unpaired": "two unpaired domains (data.a, data.b or data.root)",
    }[layout]
    extra = {"labelled": "data.sources", "paired": "data.paired", "unpaired": ""}[given]
    tail = f"; remove {extra}" if extra else ""
    raise ConfigError(f"method {method} trains on {want}{tail}")
