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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xdomain.classifier import train_f
from xdomain.data.augment import (
    F_AUGMENTS,
    TID_AUGMENTS,
    augment_target,
    diff_augment,
    parse_policy,
)
from xdomain.errors import ConfigError
from xdomain.io import cached_safetensors
from xdomain.losses import gan_d_fake, gan_d_real, gan_g, tv_loss
from xdomain.methods.base import Batch, DataSpec, Method
from xdomain.nn import init_weights
from xdomain.nn.dtn import Decoder, Discriminator, FeatureNet, MapDecoder
from xdomain.paths import cache_dir
from xdomain.schema import Range

# Part of f's cache key: bump when f's architecture, augmentation or training loop changes.
F_VERSION = 2  # 2: trained on one CPU thread, whatever the caller's thread count
# Ternary D classes (the paper's 1, 2, 3 counted from 0).
FAKE_SOURCE, FAKE_TARGET, REAL_TARGET = 0, 1, 2


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
        # one bar, not one per torchrun process (each trains the same f: it is deterministic)
        progress = self.stepper.is_main_process
        state, self.f_from_cache = cached_safetensors(
            path,
            lambda: train_f(x, y, self.spec, self.cfg, progress=progress, xt=xt),
            "f",
            check=self.f.load_state_dict,  # copies into f's parameters, wherever they live
        )
        if not self.f_from_cache:
            self.f.load_state_dict(state)
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
