"""Judges: small classifiers trained on a dataset's REAL images, used to score generated ones.

A judge gives three numbers in one feature space that needs no downloaded weights: label accuracy
(the DTN / StarGAN protocol: does the translated image keep its class?), and FID / KID on its
penultimate activations (`Judge.features`).

A judge is NEVER trained on generated images. It sees only the real train split it is given
(with light geometric augmentation of those real images) and reports its accuracy on a held-out
real split; a judge fitted to a generator's output would reward that generator's artefacts.

Training is deterministic (seeded init, data order and augmentation), so a judge is a pure function
of its data and hyper-parameters; `get_judge` caches it under a sha256 of exactly those, as
safetensors weights plus a JSON sidecar, written atomically and never unpickled.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from xdomain.classifier import fit
from xdomain.errors import DataError
from xdomain.io import atomic_write, atomic_write_text, sha256_file
from xdomain.paths import cache_dir
from xdomain.repro import one_thread

# Bump whenever the architecture, augmentation or training loop changes: it is part of the cache
# key, so old cached judges are retrained instead of being loaded into a different network.
JUDGE_VERSION = 2  # 2: trained on one CPU thread, whatever the caller's thread count


@dataclass(frozen=True)
class JudgeArch:
    """Everything needed to rebuild a `Judge` before loading its weights (stored in the sidecar)."""

    in_channels: int = 3
    num_classes: int = 10
    width: int = 16
    feature_dim: int = 128
    dropout: float = 0.3


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters; all of them enter the cache key."""

    seed: int = 0
    steps: int = 500
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 5e-4
    max_shift_px: float = 2.0
    max_scale: float = 0.1
    max_rotate_deg: float = 8.0


def _block(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 conv + BN + ReLU, then 2x2 max-pool: halves the resolution."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class Judge(nn.Module):
    """Small CNN classifier for (B, C, H, W) images in [-1, 1], 28 to 64 px (32 by default).

    Three conv blocks, then adaptive average pooling to 4x4 so that the linear head has the same
    input size whatever the image size; `features` is the penultimate (post-ReLU) layer.
    """

    heldout_accuracy: float

    def __init__(self, arch: JudgeArch | None = None) -> None:
        super().__init__()
        self.arch = arch or JudgeArch()
        w = self.arch.width
        self.body = nn.Sequential(
            _block(self.arch.in_channels, w),  # (B, w, H/2, W/2)
            _block(w, 2 * w),  # (B, 2w, H/4, W/4)
            nn.Conv2d(2 * w, 4 * w, 3, padding=1, bias=False),
            nn.BatchNorm2d(4 * w),
            nn.ReLU(inplace=True),  # (B, 4w, H/4, W/4)
            nn.AdaptiveAvgPool2d(4),  # (B, 4w, 4, 4)
            nn.Flatten(),  # (B, 64w)
            nn.Linear(64 * w, self.arch.feature_dim),
            nn.ReLU(inplace=True),  # (B, D)
        )
        self.drop = nn.Dropout(self.arch.dropout)
        self.head = nn.Linear(self.arch.feature_dim, self.arch.num_classes)
        self.heldout_accuracy = float("nan")

    def features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, D) penultimate activations (the FID / KID feature space).

        Inputs are moved to the judge's device and dtype, so generated images can be scored
        wherever the generator left them (a judge from `get_judge` lives on the CPU).
        """
        w = self.head.weight
        return self.body(x.to(w.device, w.dtype))

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, K) class logits."""
        return self.head(self.drop(self.features(x)))


def _check_split(x: Tensor, y: Tensor, num_classes: int, what: str) -> None:
    """Raise `DataError` for inputs a judge cannot be trained or scored on."""
    if x.ndim != 4 or not x.is_floating_point():
        raise DataError(
            f"{what}: expected float images (N, C, H, W), got {x.dtype} {tuple(x.shape)}"
        )
    if y.ndim != 1 or y.shape[0] != x.shape[0] or y.is_floating_point():
        raise DataError(f"{what}: expected {x.shape[0]} integer labels, got {y.dtype} {y.shape}")
    if x.shape[0] == 0:
        raise DataError(f"{what}: no images")
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise DataError(f"{what}: labels must lie in [0, {num_classes}), got {int(y.min())}..")
    if not (min(x.shape[-2:]) >= 28 and max(x.shape[-2:]) <= 64):
        raise DataError(f"{what}: judges support 28 to 64 px images, got {tuple(x.shape[-2:])}")


def _augment(x: Tensor, cfg: TrainConfig, gen: torch.Generator) -> Tensor:
    """Random shift / scale / small rotation of (B, C, H, W) real images, one affine per image.

    Done with `affine_grid` + `grid_sample` (border padding, so no black frames appear on images
    whose background is not -1). The generator makes it part of the deterministic training run.
    """
    b, _, h, w = x.shape
    u = torch.rand(b, 4, generator=gen, dtype=x.dtype) * 2 - 1  # (B, 4) in [-1, 1]
    scale = 1.0 + cfg.max_scale * u[:, 0]
    angle = math.radians(cfg.max_rotate_deg) * u[:, 1]
    # Normalised coordinates span 2 units over the image: one pixel is 2 / size.
    tx = cfg.max_shift_px * 2.0 / w * u[:, 2]
    ty = cfg.max_shift_px * 2.0 / h * u[:, 3]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1
    )  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@torch.no_grad()
def label_accuracy(judge: nn.Module, x: Tensor, y: Tensor, batch_size: int = 256) -> float:
    """Fraction of (N, C, H, W) images `x` that `judge` assigns to their labels `y` (N,).

    Scored in eval mode (BatchNorm running stats, no dropout), so the value does not depend on
    `batch_size`; the judge's previous mode is restored afterwards.
    """
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise DataError(f"label_accuracy: {x.shape[0]} images but {y.shape[0]} labels")
    was_training = judge.training
    judge.eval()
    device = next(judge.parameters()).device
    correct = 0
    for i in range(0, x.shape[0], batch_size):
        logits = judge(x[i : i + batch_size].to(device))  # (b, K)
        correct += int((logits.argmax(1).cpu() == y[i : i + batch_size].cpu()).sum())
    judge.train(was_training)
    return correct / x.shape[0]


def train_judge(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    *,
    num_classes: int,
    seed: int = 0,
    steps: int = TrainConfig.steps,
    batch_size: int = TrainConfig.batch_size,
    lr: float = TrainConfig.lr,
) -> tuple[Judge, float]:
    """Train a judge on real (train_x, train_y) on the CPU; return it (eval mode) and its accuracy
    on the held-out real (test_x, test_y).

    AdamW with a one-cycle schedule for a fixed number of steps (not epochs), so the cost does not
    grow with the dataset: about 10 s on one CPU thread for 32x32 images. Weight init, dropout, data
    order and augmentation all draw from `seed`, inside `fork_rng` so the caller's global RNG state
    is untouched.
    """
    cfg = TrainConfig(seed=seed, steps=steps, batch_size=batch_size, lr=lr)
    return _train(train_x, train_y, test_x, test_y, num_classes=num_classes, cfg=cfg)


def _train(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    *,
    num_classes: int,
    cfg: TrainConfig,
    desc: str = "training judge",
) -> tuple[Judge, float]:
    """The training run behind `train_judge` and `get_judge`, taking the whole hashed config."""
    _check_split(train_x, train_y, num_classes, "train")
    _check_split(test_x, test_y, num_classes, "test")
    if cfg.steps < 1 or cfg.batch_size < 1:
        raise DataError(f"steps and batch_size must be >= 1, got {cfg.steps}, {cfg.batch_size}")
    x = train_x.detach().to("cpu", torch.float32)  # (N, C, H, W)
    y = train_y.detach().to("cpu", torch.long)  # (N,)
    n = x.shape[0]
    bs = min(cfg.batch_size, n)
    arch = JudgeArch(in_channels=x.shape[1], num_classes=num_classes)

    # one thread: float reductions (and so the trained judge) differ between thread counts, and
    # the cache key cannot know the caller's; a judge must not depend on who trained it first
    with one_thread(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        judge = Judge(arch)
        opt = torch.optim.AdamW(judge.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps)
        judge.train()
        epoch = {"order": torch.randperm(n, generator=gen), "pos": 0}

        def batch() -> tuple[Tensor, Tensor]:
            if epoch["pos"] + bs > n:  # new epoch: reshuffle, drop the ragged tail
                epoch["order"], epoch["pos"] = torch.randperm(n, generator=gen), 0
            idx = epoch["order"][epoch["pos"] : epoch["pos"] + bs]
            epoch["pos"] += bs
            return _augment(x[idx], cfg, gen), y[idx]

        fit(judge, opt, sched, batch, cfg.steps, desc, every=20)

    acc = label_accuracy(judge, test_x, test_y)
    _freeze(judge, acc)
    return judge, acc


def _freeze(judge: Judge, accuracy: float) -> None:
    """Put a judge into the state scoring expects: eval mode, no grads, accuracy attached."""
    judge.eval()
    judge.requires_grad_(False)
    judge.heldout_accuracy = float(accuracy)


def judge_hash(
    train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], num_classes: int, cfg: TrainConfig
) -> str:
    """sha256 hex digest of the data (dtype, shape, bytes), the hyper-parameters and JUDGE_VERSION.

    The content, not a dataset name, is the key: re-rendered or re-split data gets a new judge.
    """
    h = hashlib.sha256()
    meta = {
        "judge_version": JUDGE_VERSION,
        "num_classes": num_classes,
        "train_config": asdict(cfg),
        "arch": {
            k: v for k, v in asdict(JudgeArch()).items() if k not in ("in_channels", "num_classes")
        },
    }
    h.update(json.dumps(meta, sort_keys=True).encode())
    for t in (*train, *test):
        t = t.detach().to("cpu").contiguous()
        h.update(f"|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _save(judge: Judge, weights: Path, sidecar: Path, digest: str) -> None:
    """Weights first, sidecar last: the sidecar (with the weights' hash) marks a whole entry."""
    state = {k: v.detach().cpu().contiguous() for k, v in judge.state_dict().items()}
    atomic_write(weights, lambda p: save_file(state, str(p)))
    meta = {
        "hash": digest,
        "judge_version": JUDGE_VERSION,
        "heldout_accuracy": judge.heldout_accuracy,
        "num_classes": judge.arch.num_classes,
        "arch": asdict(judge.arch),
        "weights_sha256": sha256_file(weights),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_text(sidecar, json.dumps(meta, indent=2) + "\n")


def _load(weights: Path, sidecar: Path, digest: str) -> Judge:
    """Rebuild a cached judge; raise ValueError (or an I/O error) on anything inconsistent."""
    meta = json.loads(sidecar.read_text())  # FileNotFoundError when only the weights are left
    if not isinstance(meta, dict):
        raise ValueError("sidecar is not a JSON object")
    if meta.get("hash") != digest or meta.get("judge_version") != JUDGE_VERSION:
        raise ValueError("sidecar belongs to a different judge")
    if meta.get("weights_sha256") != sha256_file(weights):
        raise ValueError("weights file does not match its recorded sha256")
    judge = Judge(JudgeArch(**meta["arch"]))
    judge.load_state_dict(load_file(str(weights)), strict=True)
    _freeze(judge, float(meta["heldout_accuracy"]))
    return judge


def get_judge(
    name: str,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    *,
    num_classes: int,
    cache: bool = True,
) -> Judge:
    """The judge for a dataset's real (train, test) split: loaded from the cache or trained once.

    Stored as `cache_dir("judges")/<name>-<hash16>.safetensors` + `.json`. A cache entry that
    cannot be read or does not check out (truncated, edited, from another version) is retrained
    with a warning rather than crashing an evaluation. The judge is on the CPU, in eval mode, with
    requires_grad False and `.heldout_accuracy` set; move it with `.to(device)` if needed.
    """
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise DataError(f"judge name must be a plain file-name stem, got {name!r}")
    cfg = TrainConfig()
    digest = judge_hash(train, test, num_classes, cfg)
    root = cache_dir("judges")
    weights = root / f"{name}-{digest[:16]}.safetensors"
    sidecar = weights.with_suffix(".json")

    if cache and (weights.exists() or sidecar.exists()):
        try:
            return _load(weights, sidecar, digest)
        except Exception as exc:  # any unreadable or half entry is retrained, never fatal
            warnings.warn(
                f"cached judge {weights} is unusable ({type(exc).__name__}: {exc}); retraining",
                RuntimeWarning,
                stacklevel=2,
            )

    desc = f"training the {name} judge (once; cached)"
    judge, _ = _train(*train, *test, num_classes=num_classes, cfg=cfg, desc=desc)
    if cache:
        try:
            _save(judge, weights, sidecar, digest)
        except OSError as exc:  # a full or read-only cache costs the next evaluation a retraining
            warnings.warn(
                f"could not cache judge at {weights} ({exc})", RuntimeWarning, stacklevel=2
            )
    return judge
