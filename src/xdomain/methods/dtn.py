"""DTN: the Domain Transfer Network (Taigman, Polyak & Wolf, "Unsupervised Cross-Domain Image
Generation", ICLR 2017).

A fixed feature extractor `f`, trained first as a classifier of the SOURCE domain (its labels are
allowed; target labels never are), and a decoder `g` on its features give the generator
G = g o f. G maps source images into the target domain so that f does not notice (f-constancy)
and maps target images to themselves (target identity).

Names here -> the paper's symbols:
    f            f, the source classifier's feature extractor (`f_feat` -> f(x), a vector)
    g            g, the decoder; G(x) = g(f(x))
    D            D, ternary (classes D_1 = G(source), D_2 = G(target), D_3 = real target) or
                 binary (real target vs any G(.)) as in the authors' reference code
    a, b         source s and target t domain (printed -> handwritten digits in the demo)
    loss_adv     L_GANG,  weight 1
    loss_const   L_CONST = d(f(x), f(G(x))) on source, MSE;  weight lambda_const = alpha
    loss_tid     L_TID   = d_2(x, G(x)) on target, MSE;      weight lambda_tid   = beta
    loss_tv      L_TV    total variation of G(x), exponent B = 1; weight lambda_tv = gamma
    loss_d       L_D

Beyond the paper (each a config switch, off or neutral where the paper says nothing):
- `f_augment`: augmentations of the printed digits while f is pretrained that make them look more
  like handwriting (grey, inverted, thicker/thinner, warped, low resolution). DTN can only carry a
  class across domains as far as f reads it in the target domain, so this widens f's reach.
- `d_augment`: DiffAugment of real and fake images before D, so that D cannot memorise the small
  target set; `d_sn`: spectral norm in D.
- `f_adapt_rounds`: f adapted to the target images by self-training on its own confident
  labels (target images, never target labels). G can only be as right as f's reading of G's
  output, which is a target-domain image.
- `tid_augment`: L_TID also on target images made source-like (neighbouring digits, faint ink,
  blur, noise, colours): g learns to draw the clean digit whatever the source adds around it.
- `finetune_f`: the reference code keeps training f during the GAN phase; the paper does not.
- `g_input` / `const_on`: which of f's layers g decodes and L_CONST compares (the paper: f's
  features). On the 1,400-image digit target, features let G satisfy f with adversarial textures;
  class probabilities (bounded, shared by both domains) make g a class-to-handwriting decoder.
- `g_norm`: batch norm in g sees one domain per forward pass; `none` keeps train and eval alike.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from tqdm.auto import tqdm

from xdomain.errors import ConfigError
from xdomain.io import verified, write_verified
from xdomain.losses import diff_augment, gan_d_fake, gan_d_real, gan_g, tv_loss
from xdomain.methods.base import Batch, DataSpec, Method
from xdomain.nn import conv_block, deconv_block, init_weights, maybe_sn
from xdomain.paths import cache_dir
from xdomain.repro import one_thread
from xdomain.schema import Range

# Part of f's cache key: bump when f's architecture, augmentation or training loop changes.
F_VERSION = 2  # 2: trained on one CPU thread, whatever the caller's thread count
# Ternary D classes (the paper's 1, 2, 3 counted from 0).
FAKE_SOURCE, FAKE_TARGET, REAL_TARGET = 0, 1, 2


# ----------------------------------------------------------------------------- networks


class FeatureNet(nn.Module):
    """f: (B, C, 32, 32) -> (B, feat_dim) features, plus a linear head for f's pretraining.

    The reference architecture: three stride-2 convs (32 -> 16 -> 8 -> 4) and a 4x4 valid conv
    to a 1x1 feature map, which is also g's input.
    """

    def __init__(self, channels: int, width: int, feat_dim: int, num_classes: int) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            conv_block(channels, w, norm="none", act="lrelu"),  # (B, w, 16, 16)
            conv_block(w, 2 * w, norm="batch", act="lrelu"),  # (B, 2w, 8, 8)
            conv_block(2 * w, 4 * w, norm="batch", act="lrelu"),  # (B, 4w, 4, 4)
            nn.Conv2d(4 * w, feat_dim, 4, 1, 0),  # (B, feat_dim, 1, 1)
        )
        self.head = nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(feat_dim, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, feat_dim) features f(x)."""
        return self.body(x).flatten(1)

    def logits(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, num_classes) class logits."""
        return self.head(self(x))

    def feature_map(self, x: Tensor, layer: int) -> Tensor:
        """An inner layer: 1 -> (B, 2w, 8, 8), 2 -> (B, 4w, 4, 4); it keeps where the ink is."""
        return self.body[: layer + 1](x)


class Decoder(nn.Module):
    """g: (B, in_dim) -> (B, C, 32, 32) in [-1, 1]; transposed convs 1 -> 4 -> 8 -> 16 -> 32."""

    def __init__(self, in_dim: int, width: int, channels: int, norm: str = "batch") -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            deconv_block(in_dim, 4 * w, 4, 1, 0, norm=norm),  # (B, 4w, 4, 4)
            deconv_block(4 * w, 2 * w, norm=norm),  # (B, 2w, 8, 8)
            deconv_block(2 * w, w, norm=norm),  # (B, w, 16, 16)
            nn.ConvTranspose2d(w, channels, 4, 2, 1),  # (B, C, 32, 32)
            nn.Tanh(),
        )

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h[:, :, None, None])


class MapDecoder(nn.Module):
    """g for spatial codes: (B, M + K, S, S) -> (B, C, 32, 32), S = 8 or 4, by 2x transposed
    convs. With `squeeze` > 0 a 1x1 conv first narrows f's map (M channels) to `squeeze`
    channels, a bottleneck that leaves the class to the K probabilities and keeps the map for
    where the ink is; a 3x3 conv then mixes the two."""

    def __init__(
        self, map_ch: int, n_cls: int, size: int, width: int, channels: int, norm: str, squeeze: int
    ) -> None:
        super().__init__()
        w = width
        self.map_ch = map_ch
        self.squeeze = nn.Conv2d(map_ch, squeeze, 1) if squeeze > 0 else nn.Identity()
        in_ch = (squeeze if squeeze > 0 else map_ch) + n_cls
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, 4 * w, 3, 1, 1),
            nn.BatchNorm2d(4 * w) if norm == "batch" else nn.Identity(),
            nn.ReLU(),
        ]
        ch = 4 * w
        while size < 16:
            layers.append(deconv_block(ch, ch // 2, norm=norm))  # doubles S
            ch, size = ch // 2, size * 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]  # (B, C, 32, 32)
        self.net = nn.Sequential(*layers)

    def forward(self, h: Tensor) -> Tensor:
        fmap, probs = h[:, : self.map_ch], h[:, self.map_ch :]  # (B, M, S, S), (B, K, S, S)
        return self.net(torch.cat([self.squeeze(fmap), probs], 1))


class Discriminator(nn.Module):
    """D: (B, C, 32, 32) -> (B, n_out) logits; n_out = 3 (ternary) or 1 (binary)."""

    def __init__(self, channels: int, width: int, n_out: int, norm: str, sn: bool) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            conv_block(channels, w, norm="none", act="lrelu", sn=sn),  # (B, w, 16, 16)
            conv_block(w, 2 * w, norm=norm, act="lrelu", sn=sn),  # (B, 2w, 8, 8)
            conv_block(2 * w, 4 * w, norm=norm, act="lrelu", sn=sn),  # (B, 4w, 4, 4)
            maybe_sn(nn.Conv2d(4 * w, n_out, 4, 1, 0), sn),  # (B, n_out, 1, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).flatten(1)


# ----------------------------------------------------------------------------- f's augmentation

F_AUGMENTS = ("gray", "invert", "autocontrast", "binarize", "thickness", "affine", "lowres")


def parse_policy(field: str, policy: str, valid: tuple[str, ...]) -> list[str]:
    """A comma list of augmentation ops -> its ops, or a one-line ConfigError naming `field`."""
    ops = [p.strip() for p in policy.split(",") if p.strip()]
    for op in ops:
        if op not in valid:
            raise ConfigError(f"model.{field}: unknown op '{op}'; valid: {', '.join(valid)}")
    return ops


def augment_source(x: Tensor, policy: str, gen: torch.Generator) -> Tensor:
    """Make (B, C, H, W) printed digits in [-1, 1] look more like handwriting, per image at random.

    Only generic image operations that need no target labels: `gray` (luma to every channel),
    `invert` (dark-on-light <-> light-on-dark), `autocontrast` (grey, turned so the border is dark,
    stretched to [-1, 1]: light ink on black), `binarize` (a steep contrast curve around the
    image mean: flat ink, flat background), `thickness` (3x3 max or min filter: bolder or
    thinner strokes), `affine` (rotation, shear, scale, shift), `lowres` (down to 6-16 px and back
    up: the blur of an upsampled small scan). Each op is applied to half the images.
    """
    b, c, h, w = x.shape
    ops = parse_policy("f_augment", policy, F_AUGMENTS)

    def pick() -> Tensor:
        return (torch.rand(b, generator=gen) < 0.5)[:, None, None, None]  # (B, 1, 1, 1)

    for op in ops:
        if op == "gray" and c == 3:
            luma = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]  # (B, 1, H, W)
            x = torch.where(pick(), luma.expand_as(x), x)
        elif op == "invert":
            x = torch.where(pick(), -x, x)
        elif op == "autocontrast":
            gray = x.mean(1, keepdim=True)  # (B, 1, H, W)
            ring = torch.ones_like(gray[:1], dtype=torch.bool)
            ring[..., 3:-3, 3:-3] = False  # the 3 px border: mostly background
            dark_ink = gray[:, :, ring[0, 0]].mean((1, 2)) > gray.mean((1, 2, 3))  # (B,)
            gray = torch.where(dark_ink[:, None, None, None], -gray, gray)
            lo = gray.amin((1, 2, 3), keepdim=True)
            hi = gray.amax((1, 2, 3), keepdim=True)
            gray = (gray - lo) / (hi - lo).clamp_min(1e-3) * 2 - 1
            x = torch.where(pick(), gray.expand_as(x), x)
        elif op == "binarize":
            mean = x.mean((1, 2, 3), keepdim=True)
            std = x.std((1, 2, 3), keepdim=True).clamp_min(1e-3)
            x = torch.where(pick(), torch.tanh(3 * (x - mean) / std), x)
        elif op == "thickness":
            thick = F.max_pool2d(x, 3, 1, 1)
            thin = -F.max_pool2d(-x, 3, 1, 1)
            which = torch.rand(b, generator=gen)[:, None, None, None]
            x = torch.where(which < 1 / 3, thick, torch.where(which < 2 / 3, thin, x))
        elif op == "affine":
            u = torch.rand(b, 5, generator=gen) * 2 - 1  # (B, 5) in [-1, 1]
            ang, shear = u[:, 0] * math.radians(15), u[:, 1] * 0.3
            # digit size x0.7 .. x1.1: printed digits fill the frame, scanned ones have a margin
            size = 0.9 + 0.2 * u[:, 2]
            cos, sin = torch.cos(ang) / size, torch.sin(ang) / size
            theta = torch.stack(
                [
                    torch.stack([cos, -sin + shear, u[:, 3] * 0.15], 1),
                    torch.stack([sin, cos, u[:, 4] * 0.15], 1),
                ],
                1,
            )  # (B, 2, 3)
            grid = F.affine_grid(theta, [b, c, h, w], align_corners=False)  # (B, H, W, 2)
            x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
        elif op == "lowres":
            out = x.clone()
            sizes = torch.randint(6, 17, (b,), generator=gen)
            mask = pick()[:, 0, 0, 0]
            for s in sizes[mask].unique().tolist():
                sel = mask & (sizes == s)
                small = F.interpolate(x[sel], size=(s, s), mode="area")
                out[sel] = F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)
            x = out.clamp(-1, 1)
    return x


TID_AUGMENTS = ("neighbours", "faint", "blur", "noise", "colour")


def augment_target(x: Tensor, policy: str) -> Tensor:
    """Make (B, C, H, W) target digits in [-1, 1] (light ink on dark) look more like source
    digits, per image at random; L_TID then asks g(f(t')) = t, so g learns to drop what the
    source adds. Target images only: no labels, no source images.

    `neighbours` (parts of two other digits of the batch at the left and right edge, as house
    numbers have), `faint` (ink contrast x0.3-1), `blur` (3x3 box blur), `noise` (Gaussian,
    sigma up to 0.15), `colour` (random ink and background colours; the grey level is the
    ink's coverage). Each op is applied to half the images, in the order given. Uses the global
    RNG (seeded per process, saved with checkpoints).
    """
    b, c, _, w = x.shape
    ops = parse_policy("tid_augment", policy, TID_AUGMENTS)

    def pick() -> Tensor:
        return torch.rand(b, 1, 1, 1, device=x.device) < 0.5  # (B, 1, 1, 1)

    def uniform(lo: float, hi: float) -> Tensor:
        return lo + (hi - lo) * torch.rand(b, 1, 1, 1, device=x.device)  # (B, 1, 1, 1)

    for op in ops:
        if op == "neighbours":
            shift = int(torch.randint(w // 2, w * 11 // 16 + 1, ()))  # 16-22 px at 32
            left = F.pad(x.roll(1, 0)[..., shift:], (0, shift), value=-1.0)  # moved left
            right = F.pad(x.roll(2, 0)[..., : w - shift], (shift, 0), value=-1.0)
            x = torch.where(pick(), torch.maximum(x, torch.maximum(left, right)), x)
        elif op == "faint":
            x = torch.where(pick(), -1 + (x + 1) * uniform(0.3, 1.0), x)
        elif op == "blur":
            blurred = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
            x = torch.where(pick(), blurred, x)
        elif op == "noise":
            noisy = (x + torch.randn_like(x) * uniform(0.0, 0.15)).clamp(-1, 1)
            x = torch.where(pick(), noisy, x)
        elif op == "colour":
            ink = (x.mean(1, keepdim=True) + 1) / 2  # (B, 1, H, W) in [0, 1]
            fg = torch.rand(b, c, 1, 1, device=x.device) * 2 - 1
            bg = torch.rand(b, c, 1, 1, device=x.device) * 2 - 1
            x = torch.where(pick(), bg + (fg - bg) * ink, x)
    return x


# ----------------------------------------------------------------------------- the method


class DTN(Method):
    """Domain Transfer Network: G = g o f with a fixed, pretrained source classifier f.

    After `setup` (phase 1, f's pretraining), for benchmarks that time it apart from the GAN loop:

    - `f_from_cache`: True when f was loaded from its verified cache, False when it was trained
      (also when a damaged cache entry was retrained); None before phase 1 ran.
    - `f_pretrain_seconds`: the wall time of phase 1, loading or training; None before it ran.
    """

    # tid_recolour: true was L_TID on recoloured targets, now the `colour` op of tid_augment
    renamed_keys: ClassVar[dict[str, tuple[str, Any]]] = {
        "tid_recolour": ("tid_augment", lambda on: "colour" if on else "")
    }

    @dataclass
    class Config:
        # architecture (the reference code's networks at width 64; feat_dim = f's output size)
        width_f: int = 64
        width_g: int = 64
        width_d: int = 64
        feat_dim: int = 128
        # loss weights: alpha, beta, gamma of the paper (digits)
        lambda_const: float = 15.0
        lambda_tid: float = 15.0
        lambda_tv: float = 0.0
        use_discriminator: bool = True
        discriminator: Literal["ternary", "binary"] = "ternary"
        gan_loss: Literal["vanilla", "lsgan", "hinge"] = "vanilla"  # binary D only
        # binary D (reference code): updates per step in the source and the target phase
        d_steps_source: int = 1
        g_steps_source: int = 6
        d_steps_target: int = 2
        g_steps_target: int = 4
        # optimisation (reference: Adam 3e-4, beta1 0.5)
        lr_g: float = 3e-4
        lr_d: float = 3e-4
        beta1: float = 0.5
        beta2: float = 0.999
        # batch norm in g sees one domain per forward pass, so its batch statistics differ
        # between training (per domain) and inference (running mixture); `none` avoids that
        g_norm: Literal["batch", "instance", "none"] = "batch"
        # D regularisation beyond the paper
        d_norm: Literal["batch", "instance", "none"] = "batch"
        d_sn: bool = False
        d_augment: str = ""  # DiffAugment policy, e.g. "color,translation,cutout"
        # f: pretraining on labelled source images (phase 1) and what L_CONST compares
        f_steps: int = 2000
        f_batch: int = 128
        f_lr: float = 1e-3
        f_augment: str = ""  # comma list of F_AUGMENTS
        f_seed: int = 0
        # beyond the paper: unsupervised adaptation of f to the target domain (no target labels)
        # by self-training: f labels the target training images, keeps its most confident share
        # of each class, and trains on them beside the source; `f_adapt_rounds` rounds, the kept
        # share growing to `f_adapt_keep`. f's reach into the target domain bounds what L_CONST
        # can demand of G: a digit f misreads in handwriting can pass L_CONST in the wrong class.
        f_adapt_rounds: Annotated[int, Range(0, 10)] = 0
        f_adapt_steps: Annotated[int, Range(1, 100000)] = 300  # per round
        f_adapt_keep: Annotated[float, Range(0.05, 1.0)] = 0.8
        const_on: Literal["features", "logits", "probs", "map"] = "features"
        # what g decodes: f's features (paper), its class logits, its class probabilities, or
        # `map`: f's inner feature map (layer `map_layer`) with the class probabilities
        g_input: Literal["features", "logits", "probs", "map"] = "features"
        map_layer: Annotated[int, Range(1, 3)] = 2  # 1: f's 8x8 map, 2: its 4x4 map
        const_map_weight: float = 1.0  # const_on=map: the map's share of L_CONST
        # const_on=map: how the class part of L_CONST compares f's class probabilities: `mse`
        # (bounded, gentle) or `kl` (KL(f(x) || f(G(x))): a strong pull back where G's output
        # has left x's class, where the squared error of saturated probabilities fades)
        const_class_loss: Literal["mse", "kl"] = "mse"
        map_squeeze: int = 0  # g_input=map: channels g narrows f's map to (0: all of them)
        map_norm: Literal["none", "instance"] = "none"  # per-image channel statistics removed
        # beyond the paper: L_TID also asks g(f(t')) = t for t' = t made source-like by the ops of
        # TID_AUGMENTS (target images only, no labels), so g learns to ignore what sources add
        tid_augment: str = ""
        finetune_f: bool = False  # reference code: f keeps learning (its CE loss) during GAN
        lr_f: float = 1e-4

    def __init__(self, cfg: DTN.Config, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        if spec.kind != "image" or spec.image_size != 32:
            raise ConfigError("dtn: the networks are built for 32x32 images (data.image_size=32)")
        # a misspelt policy fails when the method is built, not steps into training
        parse_policy("f_augment", cfg.f_augment, F_AUGMENTS)
        parse_policy("tid_augment", cfg.tid_augment, TID_AUGMENTS)
        n_cls = max(spec.num_classes_a, 1)
        self.f = FeatureNet(spec.channels, cfg.width_f, cfg.feat_dim, n_cls)
        if cfg.g_input == "map":
            map_ch, map_size = (2 * cfg.width_f, 8) if cfg.map_layer == 1 else (4 * cfg.width_f, 4)
            self.g: nn.Module = MapDecoder(
                map_ch, n_cls, map_size, cfg.width_g, spec.channels, cfg.g_norm, cfg.map_squeeze
            )
        else:
            g_in = cfg.feat_dim if cfg.g_input == "features" else n_cls
            self.g = Decoder(g_in, cfg.width_g, spec.channels, cfg.g_norm)
        n_out = 3 if cfg.discriminator == "ternary" else 1
        self.D = Discriminator(spec.channels, cfg.width_d, n_out, cfg.d_norm, cfg.d_sn)
        for net in (self.f, self.g, self.D):
            init_weights(net)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(self.g.parameters(), cfg.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), cfg.lr_d, betas=betas)
        self.opt_f = (
            torch.optim.Adam(self.f.parameters(), cfg.lr_f, betas=betas) if cfg.finetune_f else None
        )
        self.requires_grad(self.f, flag=cfg.finetune_f)
        self.f.eval()  # see `train`
        self.f_from_cache: bool | None = None  # set by `load_or_train_f`
        self.f_pretrain_seconds: float | None = None

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {"g": self.opt_g}
        if self.cfg.use_discriminator:  # the no-D ablation never steps opt_d
            opts["d"] = self.opt_d
        if self.opt_f is not None:
            opts["f"] = self.opt_f
        return opts

    def train(self, mode: bool = True) -> DTN:
        super().train(mode)
        # f stays in eval mode in the GAN phase: its BatchNorm statistics belong to real source
        # images; G's outputs must not shift them (f is a fixed measuring stick)
        self.f.eval()
        return self

    # ------------------------------------------------------------------ G = g o f
    def G(self, x: Tensor) -> Tensor:
        """(B, C, 32, 32) -> (B, C, 32, 32): g(f(x))."""
        return self.g(self.code(x))

    def code(self, x: Tensor) -> Tensor:
        """g's input from f: (B, feat_dim) features or (B, K) logits / class probabilities.

        The narrower class-level codes make printed and handwritten digits land on the same
        inputs of g, so a g trained on target images (L_TID) also draws for source images.
        """
        if self.cfg.g_input == "features":
            return self.f(x)
        if self.cfg.g_input == "map":
            return self._map_code(x)
        logits = self.f.logits(x)
        return logits if self.cfg.g_input == "logits" else logits.softmax(1)

    def _map(self, x: Tensor) -> Tensor:
        """f's inner map; `map_norm=instance` removes each channel's mean and scale per image,
        the statistics in which the two domains differ most (colours, contrast, background),
        and keeps the spatial pattern: where the strokes are, how they lean, how wide they are."""
        fmap = self.f.feature_map(x, self.cfg.map_layer)  # (B, M, S, S)
        return F.instance_norm(fmap) if self.cfg.map_norm == "instance" else fmap

    def _map_code(self, x: Tensor) -> Tensor:
        """f's inner map with its class probabilities broadcast over it: (B, M + K, S, S)."""
        fmap = self._map(x)  # (B, M, S, S)
        probs = self.f.logits(x).softmax(1)  # (B, K)
        return torch.cat([fmap, probs[:, :, None, None].expand(-1, -1, *fmap.shape[2:])], 1)

    def f_const(self, x: Tensor) -> Tensor:
        """What L_CONST compares: f's features (paper), its class logits or probabilities.

        Probabilities are bounded, so matching them cannot be bought with ever more confident
        adversarial textures the way unbounded features or logits can.
        """
        if self.cfg.const_on == "features":
            return self.f(x)
        if self.cfg.const_on == "map":
            return self._map_code(x).flatten(1)  # the map and the class probabilities
        logits = self.f.logits(x)
        return logits if self.cfg.const_on == "logits" else logits.softmax(1)

    def _const_map(self, xs: Tensor, fake_s: Tensor) -> Tensor:
        """L_CONST on f's class probabilities and its inner map, each a mean squared error.

        Kept apart so the ten probabilities are not drowned by the map's thousand entries; the
        map term (weight `const_map_weight`) holds where the ink is, hence the style.
        """
        with torch.no_grad():
            p_real = self.f.logits(xs).softmax(1)  # (B, K)
            m_real = self._map(xs)  # (B, M, S, S)
        logits_fake = self.f.logits(fake_s)  # (B, K)
        if self.cfg.const_class_loss == "kl":
            cls = F.kl_div(logits_fake.log_softmax(1), p_real, reduction="batchmean")
        else:
            cls = F.mse_loss(logits_fake.softmax(1), p_real)
        return cls + self.cfg.const_map_weight * F.mse_loss(self._map(fake_s), m_real)

    def generate(
        self, x: Tensor, *, target: Any = None, z: Any = None, alpha: Any = None
    ) -> Tensor:
        return self.G(x)

    # ------------------------------------------------------------------ losses
    def _d_out(self, x: Tensor) -> Tensor:
        """D's logits on DiffAugmented images (identity when no policy is set)."""
        return self.D(diff_augment(x, self.cfg.d_augment) if self.cfg.d_augment else x)

    def _ternary_ce(self, x: Tensor, cls: int) -> Tensor:
        logits = self._d_out(x)  # (B, 3)
        return F.cross_entropy(logits, torch.full_like(logits[:, 0], cls, dtype=torch.long))

    def _g_terms(
        self, xs: Tensor | None, xt: Tensor | None, fake_s: Tensor | None, fake_t: Tensor | None
    ) -> dict[str, Tensor]:
        """The content terms of L_G on whichever domains are present (switched-off ones absent)."""
        c, out = self.cfg, {}
        if c.lambda_const > 0 and xs is not None and fake_s is not None:
            if c.const_on == "map":
                out["loss_const"] = self._const_map(xs, fake_s)
            else:
                with torch.no_grad():
                    target = self.f_const(xs)  # (B, K): constant, f(x) is not what G changes
                out["loss_const"] = F.mse_loss(self.f_const(fake_s), target)
        if c.lambda_tid > 0 and xt is not None and fake_t is not None:
            out["loss_tid"] = F.mse_loss(fake_t, xt)
        if c.lambda_tv > 0:
            fakes = [t for t in (fake_s, fake_t) if t is not None]
            out["loss_tv"] = sum(tv_loss(t) for t in fakes) / len(fakes)
        return out

    def _weighted(self, terms: dict[str, Tensor]) -> Tensor:
        c = self.cfg
        w = {
            "loss_adv": 1.0,
            "loss_const": c.lambda_const,
            "loss_tid": c.lambda_tid,
            "loss_tv": c.lambda_tv,
        }
        return sum(w[k] * v for k, v in terms.items())

    # ------------------------------------------------------------------ training
    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        xs, xt = batch["a"], batch["b"]  # (B, C, 32, 32) source and target; b_label is never read
        if self.cfg.discriminator == "ternary" or not self.cfg.use_discriminator:
            logs = self._step_ternary(xs, xt)
        else:
            logs = self._step_binary(xs, xt)
        if self.opt_f is not None:
            logs["loss_f"] = self._finetune_f(xs, batch["a_label"])
        return logs

    def _step_ternary(self, xs: Tensor, xt: Tensor) -> dict[str, float]:
        """The paper: one D update on L_D, one G update on L_G, both domains in one batch."""
        c, logs = self.cfg, {}
        xt_in = augment_target(xt, c.tid_augment) if c.tid_augment else xt  # L_TID's target: xt
        fake_s, fake_t = self.G(xs), self.G(xt_in)  # (B, C, 32, 32) each
        if c.use_discriminator:
            # L_D = -log D_1(G(s)) - log D_2(G(t)) - log D_3(t)
            loss_d = (
                self._ternary_ce(fake_s.detach(), FAKE_SOURCE)
                + self._ternary_ce(fake_t.detach(), FAKE_TARGET)
                + self._ternary_ce(xt, REAL_TARGET)
            )
            self.update(self.opt_d, loss_d)
            logs["loss_d"] = loss_d.item()
        terms = self._g_terms(xs, xt, fake_s, fake_t)
        if c.use_discriminator:
            self.requires_grad(self.D, flag=False)  # G's step must not leave grads in D
            # L_GANG = -log D_3(G(s)) - log D_3(G(t))
            terms["loss_adv"] = self._ternary_ce(fake_s, REAL_TARGET) + self._ternary_ce(
                fake_t, REAL_TARGET
            )
            self.requires_grad(self.D, flag=True)
        self.update(self.opt_g, self._weighted(terms))
        return logs | {k: v.item() for k, v in terms.items()}

    def _step_binary(self, xs: Tensor, xt: Tensor) -> dict[str, float]:
        """The reference code: a source phase (D: G(s) is fake; G: fool D + L_CONST), then a target
        phase (D: t real, G(t) fake; G: fool D + L_TID), several updates each on the same batch."""
        c, k, logs = self.cfg, self.cfg.gan_loss, {}
        for domain, x in (("source", xs), ("target", xt)):
            d_steps = c.d_steps_source if domain == "source" else c.d_steps_target
            g_steps = c.g_steps_source if domain == "source" else c.g_steps_target
            for _ in range(d_steps):
                with torch.no_grad():
                    fake = self.G(x)
                fake_logits = self._d_out(fake)  # (B, 1)
                loss_d = gan_d_fake(fake_logits, k)
                if domain == "target":  # the source phase has no real images: only the fake half
                    loss_d = loss_d + gan_d_real(self._d_out(x), k)
                self.update(self.opt_d, loss_d)
                logs[f"loss_d_{domain}"] = loss_d.item()
            for _ in range(g_steps):
                fake = self.G(x)
                if domain == "source":
                    terms = self._g_terms(x, None, fake, None)
                else:
                    terms = self._g_terms(None, x, None, fake)
                self.requires_grad(self.D, flag=False)
                terms["loss_adv"] = gan_g(self._d_out(fake), k)
                self.requires_grad(self.D, flag=True)
                self.update(self.opt_g, self._weighted(terms))
            logs |= {
                f"{n}_{domain}" if n in ("loss_adv", "loss_tv") else n: v.item()
                for n, v in terms.items()
            }
        return logs

    def _finetune_f(self, xs: Tensor, labels: Tensor) -> float:
        """Reference-code option: keep f a good source classifier (source labels only)."""
        self.f.train()
        loss = F.cross_entropy(self.f.logits(xs), labels)
        self.update(self.opt_f, loss)
        self.f.eval()
        return loss.item()

    # ------------------------------------------------------------------ phase 1: f
    def setup(self, data: Any) -> None:
        """Pretrain f as a source classifier (deterministic; cached by content hash)."""
        if self.spec.num_classes_a <= 0:
            raise ConfigError("dtn: domain a needs class labels to pretrain f, its classifier")
        x, y = data.train_a.tensors()
        x, y = x[: data.n_train_a], y[: data.n_train_a]  # the validation tail stays unseen
        xt = data.train_b.tensors()[0] if self.cfg.f_adapt_rounds > 0 else None  # images only
        self.load_or_train_f(x, y, xt)

    def _f_key(self, x: Tensor, y: Tensor, xt: Tensor | None) -> str:
        c = self.cfg
        h = hashlib.sha256()
        h.update(x.numpy().tobytes())
        h.update(y.numpy().tobytes())
        adapt = {}
        if xt is not None:
            h.update(xt.numpy().tobytes())
            adapt = {"rounds": c.f_adapt_rounds, "steps": c.f_adapt_steps, "keep": c.f_adapt_keep}
        h.update(
            json.dumps(
                {
                    "v": F_VERSION,
                    "spec": self.spec.to_dict(),
                    "width": c.width_f,
                    "feat": c.feat_dim,
                    "steps": c.f_steps,
                    "batch": c.f_batch,
                    "lr": c.f_lr,
                    "aug": c.f_augment,
                    "seed": c.f_seed,
                    **({"adapt": adapt} if adapt else {}),
                },
                sort_keys=True,
            ).encode()
        )
        return h.hexdigest()[:24]

    def load_or_train_f(self, x: Tensor, y: Tensor, xt: Tensor | None = None) -> Path:
        """Load f from the cache, or train it on (N, C, 32, 32) source images and labels (N,)
        (and, with `f_adapt_rounds`, adapt it to the (M, C, 32, 32) unlabelled target images xt).

        The cache file carries a sha256 sidecar (`xdomain.io.write_verified`): a truncated or
        damaged f is retrained with a warning, never loaded and never fatal. Sets
        `f_from_cache` and `f_pretrain_seconds` (the phase's wall time) for benchmarks.
        """
        t0 = time.perf_counter()
        path = cache_dir("dtn") / f"f-{self._f_key(x, y, xt)}.safetensors"
        self.f_from_cache = False
        if verified(path):
            try:
                self.f.load_state_dict(load_file(str(path)))
                self.f_from_cache = True
            except (SafetensorError, OSError, RuntimeError, ValueError) as e:
                warnings.warn(f"cached f {path} is unusable ({e}); retraining", stacklevel=2)
        elif path.exists():
            warnings.warn(
                f"cached f {path} fails its sha256 check (truncated, damaged or no sidecar);"
                " retraining",
                stacklevel=2,
            )
        if not self.f_from_cache:
            # one bar, not one per torchrun process (each trains the same f: it is deterministic)
            progress = self.stepper.is_main_process
            state = train_f(x, y, self.spec, self.cfg, progress=progress, xt=xt)
            self.f.load_state_dict(state)  # copies into f's parameters, wherever they live
            tensors = {k: v.contiguous() for k, v in state.items()}
            try:
                write_verified(path, lambda tmp: save_file(tensors, str(tmp)))
            except OSError as e:  # a full or read-only cache costs the next run a retraining
                warnings.warn(f"could not cache f at {path} ({e}); continuing", stacklevel=2)
        self.requires_grad(self.f, flag=self.cfg.finetune_f)
        self.f.eval()
        self.f_pretrain_seconds = time.perf_counter() - t0
        return path

    @torch.no_grad()
    def f_accuracy(self, x: Tensor, y: Tensor, batch_size: int = 500) -> float:
        """f's class accuracy on (N, C, 32, 32) images: a diagnostic of its reach, never a loss."""
        self.f.eval()
        device = next(self.f.parameters()).device
        hits = sum(
            int(
                (
                    self.f.logits(x[i : i + batch_size].to(device)).argmax(1).cpu()
                    == y[i : i + batch_size]
                ).sum()
            )
            for i in range(0, len(x), batch_size)
        )
        return hits / len(x)


def train_f(
    x: Tensor,
    y: Tensor,
    spec: DataSpec,
    cfg: DTN.Config,
    *,
    progress: bool = True,
    xt: Tensor | None = None,
) -> dict[str, Tensor]:
    """Train f as a classifier of labelled source images, then (`xt` given, `f_adapt_rounds` > 0)
    adapt it to the unlabelled target images by self-training; returns its CPU state_dict.

    `progress`: a tqdm bar (`make demo` would otherwise be silent for the minute f takes).

    Seeded init, data order and augmentation inside `fork_rng`: f is a pure function of its data
    and hyper-parameters (that is what makes the content-hash cache valid), and the caller's RNG
    stream is left as it was.
    """
    # one thread: f must not depend on which process trained it first (its cache key cannot)
    with one_thread(), torch.random.fork_rng():
        torch.manual_seed(cfg.f_seed)
        gen = torch.Generator().manual_seed(cfg.f_seed)
        net = FeatureNet(spec.channels, cfg.width_f, cfg.feat_dim, max(spec.num_classes_a, 1))
        init_weights(net)
        opt = torch.optim.AdamW(net.parameters(), cfg.f_lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.f_lr, total_steps=cfg.f_steps)
        net.train()
        bar = tqdm(
            range(cfg.f_steps),
            desc=f"DTN: pretraining f on {spec.name_a}",
            unit="step",
            leave=False,
            disable=not progress,
        )
        for step in bar:
            idx = torch.randint(0, len(x), (cfg.f_batch,), generator=gen)
            xb = augment_source(x[idx], cfg.f_augment, gen) if cfg.f_augment else x[idx]
            loss = F.cross_entropy(net.logits(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
        bar.close()
        if xt is not None and cfg.f_adapt_rounds > 0:
            self_train(net, x, y, xt, cfg, gen, progress=progress)
    return {k: v.detach().cpu() for k, v in net.state_dict().items()}


@torch.no_grad()
def pseudo_labels(net: FeatureNet, xt: Tensor, keep: float) -> tuple[Tensor, Tensor]:
    """f's labels for the (M, C, H, W) target images and which to keep: the `keep` most
    confident share of each predicted class (class-balanced, so an easy class cannot crowd out
    a hard one). Returns labels (M,) and a boolean mask (M,)."""
    net.eval()
    probs = torch.cat([net.logits(xt[i : i + 500]).softmax(1) for i in range(0, len(xt), 500)])
    conf, label = probs.max(1)  # (M,), (M,)
    mask = torch.zeros(len(xt), dtype=torch.bool)
    for c in label.unique().tolist():
        idx = (label == c).nonzero().flatten()
        top = conf[idx].argsort(descending=True)[: max(1, math.ceil(keep * len(idx)))]
        mask[idx[top]] = True
    net.train()
    return label, mask


def self_train(
    net: FeatureNet,
    x: Tensor,
    y: Tensor,
    xt: Tensor,
    cfg: DTN.Config,
    gen: torch.Generator,
    *,
    progress: bool,
) -> None:
    """Rounds of self-training on the target images: relabel, keep the confident share, train on
    half source (labels, f's augmentations) and half pseudo-labelled target batches."""
    opt = torch.optim.AdamW(net.parameters(), cfg.f_lr / 4, weight_decay=1e-4)
    rounds = cfg.f_adapt_rounds
    bar = tqdm(
        total=rounds * cfg.f_adapt_steps,
        desc="DTN: adapting f to the target images (no labels)",
        unit="step",
        leave=False,
        disable=not progress,
    )
    half = cfg.f_batch // 2
    for r in range(rounds):
        label, mask = pseudo_labels(net, xt, cfg.f_adapt_keep * (r + 1) / rounds)
        xt_kept, yt_kept = xt[mask], label[mask]
        for _ in range(cfg.f_adapt_steps):
            i = torch.randint(0, len(x), (half,), generator=gen)
            j = torch.randint(0, len(xt_kept), (half,), generator=gen)
            xs = augment_source(x[i], cfg.f_augment, gen) if cfg.f_augment else x[i]
            xb = torch.cat([xs, augment_source(xt_kept[j], "affine", gen)])
            loss = F.cross_entropy(net.logits(xb), torch.cat([y[i], yt_kept[j]]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.update()
    bar.close()
