"""StarGAN (Choi, Choi, Kim, Ha, Kim, Choo, "StarGAN: Unified Generative Adversarial Networks for
Multi-Domain Image-to-Image Translation", CVPR 2018), with the defaults of yunjey/stargan.

One generator for every domain: G(x, c) takes the target label c, tiled over the image. D has
two heads on one trunk: D_src (real or fake, per patch) and D_cls (the domain labels).

    L_D = -E[D_src(x)] + E[D_src(G(x, c))] + lambda_cls L_cls^r + lambda_gp L_gp   (WGAN-GP)
    L_G = -E[D_src(G(x, c))] + lambda_cls L_cls^f + lambda_rec |x - G(G(x, c), c')|_1

with c' the input's own labels, L_cls^r = L_cls(D_cls(x), c') and L_cls^f = L_cls(D_cls(G(x, c)),
c): BCE-with-logits for binary attributes and exclusive groups, cross-entropy for categorical
ones (`xdomain.labels`). Targets are the labels of the same batch in shuffled order, as the
official. D steps every iteration, G every `n_critic` (5).

Several data sets (the mask vector, Sec. 3.2): the condition is [c_1, ..., c_n, m]; a batch of
data set k sets c_k and m = one-hot(k), zeros elsewhere, and only D_cls's part for k is trained
on it. Each iteration runs the updates once per data set, in order, as the official's
CelebA-then-RaFD loop.

Translation: `target="hair=blond,male=0"` changes the named attributes and keeps the others as
D_cls reads them in the input; `target="all"` gives the official test grid, (B, 1 + K, C, H, W)
with the input first; a (B, c_dim) tensor is a condition as is.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xdomain.errors import ConfigError, XDomainError, listing
from xdomain.labels import LabelSpace
from xdomain.limits import check_outputs
from xdomain.losses import gradient_penalty
from xdomain.methods.base import Batch, DataSpec, Method
from xdomain.methods.options import Context, Option
from xdomain.nn.stargan import StarDiscriminator, StarGenerator


class StarGAN(Method):
    translate_options = frozenset({"target"})
    cli_options = (
        Option(
            "--target",
            "target",
            "target labels ('hair=blond,male=0'); the attributes not named keep what D_cls reads"
            " in each input",
            metavar="SPEC",
        ),
        Option(
            "--all-targets",
            "all_targets",
            "every target of the official test grid, side by side after the input",
            switch=True,
        ),
    )
    layout = "labelled"
    sample_rows = "per data set: input, then one row per target of the official test grid"

    @dataclass
    class Config:
        g_conv_dim: int = 64  # generator width (official g_conv_dim)
        g_repeat_num: int = 6  # residual blocks
        d_conv_dim: int = 64
        d_repeat_num: int = 6  # stride-2 convs of D: 6 at 128 px (2x2 patches)
        lambda_cls: float = 1.0
        lambda_rec: float = 10.0
        lambda_gp: float = 10.0
        n_critic: int = 5  # D updates per G update
        g_lr: float = 1e-4
        d_lr: float = 1e-4
        beta1: float = 0.5
        beta2: float = 0.999
        # instance norm at translation time: `batch` statistics, as the official test script
        # (it never calls eval()), or the `running` statistics the norms tracked in training
        eval_norm: Literal["batch", "running"] = "batch"

    def __init__(self, cfg: StarGAN.Config, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        if spec.kind != "image" or not spec.labels:
            raise ConfigError(
                "stargan needs labelled data: set data.sources (e.g. [digits-styled]; see"
                " `xdomain.data.labelled`), not data.a / data.b"
            )
        if spec.image_size % 2**cfg.d_repeat_num or spec.image_size % 4:
            raise ConfigError(
                f"model.d_repeat_num={cfg.d_repeat_num} halves data.image_size={spec.image_size}"
                " to a fraction; image_size must be a multiple of 2**d_repeat_num (and of 4)"
            )
        if cfg.n_critic < 1 or min(cfg.g_conv_dim, cfg.d_conv_dim, cfg.d_repeat_num) < 1:
            raise ConfigError("model.n_critic, g_conv_dim, d_conv_dim, d_repeat_num must be >= 1")
        self.space = LabelSpace.from_list(spec.labels)
        self.G = StarGenerator(cfg.g_conv_dim, self.space.c_dim, cfg.g_repeat_num, spec.channels)
        self.D = StarDiscriminator(
            spec.image_size, cfg.d_conv_dim, self.space.cls_dim, cfg.d_repeat_num, spec.channels
        )
        # official init: PyTorch's defaults (the official code has no init function)
        self.opt_g = torch.optim.Adam(self.G.parameters(), cfg.g_lr, (cfg.beta1, cfg.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), cfg.d_lr, (cfg.beta1, cfg.beta2))

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.opt_g, "d": self.opt_d}

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        logs: dict[str, float] = {}
        for k in range(len(self.space.schemas)):
            tag = f"_{k}" if self.space.masked else ""
            for name, v in self._step(batch[f"x{k}"], batch[f"label{k}"], k, step).items():
                logs[name + tag] = v
        return logs

    def _step(self, x: Tensor, label: Tensor, k: int, step: int) -> dict[str, float]:
        """One iteration on a batch of data set k: x (B, C, H, W), label (B, width_k)."""
        c = self.cfg
        space = self.space
        target = label[torch.randperm(label.shape[0], device=label.device)]  # shuffled labels
        c_org, c_trg = space.condition(k, label), space.condition(k, target)  # (B, c_dim)

        # D: real as real with its labels, fake as fake, gradient penalty between them
        src, cls = self.D(x)  # (B, 1, h, w), (B, cls_dim)
        d_real = -src.mean()
        d_cls = space.cls_loss(cls, k, label)
        with torch.no_grad():  # D's step needs no graph through G
            fake = self.G(x, c_trg)
        d_fake = self.D(fake)[0].mean()
        scaler = self.stepper.scaler
        d_gp = gradient_penalty(lambda v: self.D(v)[0], x, fake, scaler=scaler)
        loss_d = d_real + d_fake + c.lambda_cls * d_cls + c.lambda_gp * d_gp
        self.update(self.opt_d, loss_d)
        logs = {"d_real": d_real.item(), "d_fake": d_fake.item(), "d_cls": d_cls.item()}
        logs["d_gp"] = d_gp.item()

        if (step + 1) % c.n_critic == 0:  # G, every n_critic-th iteration (official order)
            self.requires_grad(self.D, flag=False)
            fake = self.G(x, c_trg)
            src, cls = self.D(fake)
            g_fake = -src.mean()
            g_cls = space.cls_loss(cls, k, target)
            g_rec = F.l1_loss(self.G(fake, c_org), x)  # back to the input's own labels
            loss_g = g_fake + c.lambda_rec * g_rec + c.lambda_cls * g_cls
            self.update(self.opt_g, loss_g)
            self.requires_grad(self.D, flag=True)
            logs |= {"g_fake": g_fake.item(), "g_cls": g_cls.item(), "g_rec": g_rec.item()}
        return logs

    # ------------------------------------------------------------------ inference
    @contextmanager
    def _norms(self) -> Iterator[None]:
        """At translation time with eval_norm=batch: G's instance norms use the batch's own
        statistics, as the official test script (it never calls eval()), without moving the
        running statistics (momentum 0) that a checkpoint stores."""
        norms = [m for m in self.G.modules() if isinstance(m, nn.InstanceNorm2d)]
        if self.training or self.cfg.eval_norm != "batch":
            yield
            return
        saved = [m.momentum for m in norms]
        for m in norms:
            m.train()
            m.momentum = 0.0
        try:
            yield
        finally:
            for m, momentum in zip(norms, saved, strict=True):
                m.eval()
                m.momentum = momentum

    def input_labels(self, x: Tensor) -> list[Tensor]:
        """What D_cls reads in x (B, C, H, W): per data set, (B, width_k) labels (0/1). A model
        converted without its D reads nothing: all zeros, with a warning."""
        if "D" in self.untrained:
            warnings.warn(
                "this StarGAN was converted without its D, so the input's own labels are"
                " unknown and taken as all 0; name every attribute in the target, or convert"
                " the -D.ckpt file too",
                stacklevel=4,
            )
            return [x.new_zeros(x.shape[0], s.width) for s in self.space.schemas]
        _, logits = self.D(x)
        return [s.predict(logits[:, self.space.part(k)]) for k, s in enumerate(self.space.schemas)]

    def conditions(self, x: Tensor, target: Any) -> list[tuple[str, Tensor]]:
        """A target (`name=value,...`, `all`, or a (B, c_dim) tensor) -> [(caption, (B, c_dim))]."""
        if isinstance(target, Tensor):
            if target.shape != (x.shape[0], self.space.c_dim):
                raise XDomainError(
                    f"target tensor of shape {tuple(target.shape)}; this model takes"
                    f" ({x.shape[0]}, {self.space.c_dim}) conditions"
                )
            if target.numel() and not torch.isfinite(target.float()).all():
                raise XDomainError("target tensor holds NaN or infinite values; give 0/1 labels")
            return [("target", target.to(x.device, torch.float32))]
        if target is None:
            raise XDomainError(
                "stargan translates to a target: give target='name=value,...' (e.g."
                f" {self.space.example()}) or 'all'; attributes: "
                + listing([f"{s.dataset}: {s.describe()}" for s in self.space.schemas], "; ", 200)
            )
        base = self.input_labels(x)
        if str(target).strip() == "all":
            conds = self.space.all_targets(base)
            check_outputs(x.shape[0], 1 + len(conds), tuple(x.shape[1:]), "target='all'")
            return conds
        return [(str(target), self.space.parse(str(target), base))]

    def translate_kwargs(
        self, values: dict[str, Any], ctx: Context
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if values.get("all_targets") and values.get("target"):
            raise XDomainError("give --target SPEC or --all-targets, not both")
        target = "all" if values.get("all_targets") else values.get("target")
        return ({"target": target} if target else {}), {}

    def outputs_per_input(
        self, *, target: Any = None, z: Any = None, alpha: Any = None, reverse: bool = False
    ) -> int:
        if isinstance(target, str) and target.strip() == "all":  # the input + the test grid
            return 1 + sum(len(s.targets(torch.zeros(1, s.width))) for s in self.space.schemas)
        return 1

    def apply(self, x: Tensor, cond: Tensor) -> Tensor:
        """G(x, c) with the translation-time norm choice: x (B, C, H, W), c (B, c_dim)."""
        with self._norms():
            return self.G(x, cond)

    def generate(
        self, x: Tensor, *, target: Any = None, z: Any = None, alpha: Any = None
    ) -> Tensor:
        conds = self.conditions(x, target)
        if len(conds) == 1 and not (isinstance(target, str) and target.strip() == "all"):
            return self.apply(x, conds[0][1])  # (B, C, H, W)
        outs = [x] + [self.apply(x, cond) for _, cond in conds]
        return torch.stack(outs, dim=1)  # (B, 1 + K, C, H, W), the input first

    def visualize(self, fixed: Batch, path: Any) -> None:
        """Per data set: its inputs, then one row per target of the test grid."""
        from xdomain.grid import save_grid

        rows: list[Tensor] = []
        for k in range(len(self.space.schemas)):
            grid = self.translate(fixed[f"x{k}"], target="all")  # (B, 1 + K, C, H, W)
            rows.extend(grid.unbind(1))
        save_grid(rows, path)

    @classmethod
    def metrics(cls, kind: str) -> dict[str, str]:
        from xdomain.metrics import attributes

        return attributes.METRICS

    def evaluate(self, data: Any, cfg: Any) -> dict[str, float]:
        from xdomain.metrics.attributes import evaluate_targets

        return evaluate_targets(self, data, cfg)
