"""The one contract every method follows.

A method is an `nn.Module` holding its networks and optimizers. It owns its update order (D then G,
n_critic, G six times per D step, f fine-tuning ...) inside `train_step`, and calls `self.update`
for each optimizer step so that it never touches devices, precision scalers or processes itself.
The Trainer knows nothing about any single method.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from xdomain.data import inputs
from xdomain.data.types import Batch, DataSpec
from xdomain.errors import XDomainError
from xdomain.methods.options import Context, Option
from xdomain.optim import Stepper


@dataclass
class Provenance:
    """Where a loaded method comes from (`xdomain.load`): its checkpoint and step, the run's
    resolved config (a mapping), what it was trained on (`xdomain.fingerprint`) and, for a
    converted official checkpoint, the files it was converted from."""

    checkpoint_path: Path | None = None
    checkpoint_step: int | None = None
    run_config: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: dict[str, Any] | None = None
    converted_from: dict[str, Any] | None = None


class Method(nn.Module):
    """Base class: subclasses set `Config`, build networks and optimizers in `__init__`."""

    Config: ClassVar[type]
    #: renamed `model.*` keys of older releases: old name -> (new name, value converter). A
    #: checkpoint written before a rename still loads and resumes; a recipe may use either.
    renamed_keys: ClassVar[dict[str, tuple[str, Any]]] = {}
    #: the optional `translate` arguments this method understands; others are an error
    translate_options: ClassVar[frozenset[str]] = frozenset()
    #: the same options as the user gives them (`xdomain translate` flags, the web page's
    #: controls): declared once, turned into `translate` arguments by `translate_kwargs`
    cli_options: ClassVar[tuple[Option, ...]] = ()
    #: True when the method also learns b -> a (`generate_ba`): evaluation then scores both
    #: directions and `translate(..., reverse=True)` runs the inverse generator
    bidirectional: ClassVar[bool] = False
    #: True for fully convolutional generators: `translate` takes images of any size (a
    #: 300x451 photo through a generator trained on 256x256 crops), `preprocess="none"`
    any_size: ClassVar[bool] = False
    #: the data a method trains on: two unpaired domains (`data.a`, `data.b` or `data.root`),
    #: labelled data sets (`data.sources`, StarGAN) or aligned pairs (`data.paired`, pix2pix)
    layout: ClassVar[Literal["unpaired", "labelled", "paired"]] = "unpaired"
    #: what the rows of `visualize`'s sample grids show (the report's caption)
    sample_rows: ClassVar[str] = "input, translation"

    def __init__(self, cfg: Any, spec: DataSpec) -> None:
        super().__init__()
        self.cfg = cfg
        self.spec = spec
        self.stepper = Stepper()  # plain steps; the Trainer attaches its own (`attach`)
        # where a method may write extra figures of a run (the Trainer sets `<run>/figures`);
        # None outside a run (the Python API): such figures are then skipped
        self.artifact_dir: Path | None = None
        # networks a converted official checkpoint did not provide (`xdomain convert`)
        self.untrained: list[str] = []
        self.provenance = Provenance()  # filled by `xdomain.load`

    # what `xdomain.load` read, as attributes (`m.checkpoint_path` ...): one record underneath
    checkpoint_path = property(lambda self: self.provenance.checkpoint_path)
    checkpoint_step = property(lambda self: self.provenance.checkpoint_step)
    run_config = property(lambda self: self.provenance.run_config)
    data_fingerprint = property(lambda self: self.provenance.data_fingerprint)
    converted_from = property(lambda self: self.provenance.converted_from)

    # ------------------------------------------------------------------ to implement
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Named optimizers, for the lr schedule and checkpoints."""
        raise NotImplementedError

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        """One training iteration in the method's own update order; returns losses to log."""
        raise NotImplementedError

    def generate(
        self, x: Tensor, *, target: Any = None, z: Any = None, alpha: Any = None
    ) -> Tensor:
        """(B, C, H, W) in [-1, 1] -> translated (B, C, H, W), or (B, K, C, H, W) for several z."""
        raise NotImplementedError

    def translate_kwargs(
        self, values: dict[str, Any], ctx: Context
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The values of `cli_options` (by `dest`) -> (`translate` arguments for every input,
        arguments with one entry per input, e.g. (n_inputs, K, nz) codes). Only options this
        method declares reach it. The default passes `reverse`."""
        return ({"reverse": True} if values.get("reverse") else {}), {}

    @classmethod
    def metrics(cls, kind: str) -> dict[str, str]:
        """What `evaluate` returns on data of this kind ("image", "points") that may select a
        checkpoint (`eval.select`), each with "max"/"min" (the better direction) or "" (either).
        The default is the shared protocol's (`xdomain.metrics.translation`, the toy's)."""
        from xdomain.metrics import toy, translation

        return toy.METRICS if kind == "points" else translation.METRICS

    def outputs_per_input(
        self, *, target: Any = None, z: Any = None, alpha: Any = None, reverse: bool = False
    ) -> int:
        """How many images `generate` returns per input for these options (K of (B, K, C, H, W);
        1 for (B, C, H, W)): the CLI sends fewer inputs per forward pass when K is large."""
        return 1

    def generate_ba(self, x: Tensor) -> Tensor:
        """(B, C, H, W) of domain b -> domain a; only `bidirectional` methods have it."""
        raise XDomainError(
            f"{type(self).__name__} learns a -> b only; it has no b -> a generator (reverse=True)"
        )

    def setup(self, data: Any) -> None:
        """A method's phase before the GAN loop (e.g. DTN pretrains f); must be deterministic."""

    def train_state(self) -> dict[str, Tensor]:
        """Training state that is not in `state_dict` (not weights a user exports), e.g. the
        history pool of past fakes: saved in every checkpoint's `train.safetensors`, so a resumed
        run continues bit-exactly. Names are plain keys; tensors may be empty."""
        return {}

    def load_train_state(self, tensors: dict[str, Tensor]) -> None:
        """Restore what `train_state` returned (the same keys)."""

    def evaluate(self, data: Any, cfg: Any) -> dict[str, float]:
        """Held-out metrics of this method (the Trainer and `xdomain evaluate` call this).

        The default scores a -> b (and b -> a for `bidirectional` methods) with the shared
        judges (`xdomain.evaluate.evaluate_translation`); a method overrides it to add its own
        numbers (as CycleGAN adds the cycle error) or to score another protocol.
        """
        from xdomain.metrics.translation import evaluate_translation

        return evaluate_translation(self, data, cfg)

    def visualize(self, fixed: Batch, path: Path) -> None:
        """Write a PNG of fixed held-out inputs and their translations (rows: input, output)."""
        from xdomain.grid import save_grid

        x = fixed["a"]
        y = self.translate(x)
        save_grid([x, y], path)

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode (and no autograd) for a block, then the mode it had before: for samples,
        scores and translation in the middle of training."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was_training)

    # ------------------------------------------------------------------ shared machinery
    def attach(self, stepper: Stepper) -> None:
        """The Trainer's `Stepper`: devices, precision and processes stay out of the method."""
        self.stepper = stepper

    def update(
        self, opt: torch.optim.Optimizer, loss: Tensor, *, retain_graph: bool = False
    ) -> None:
        """zero_grad -> backward -> step, for one optimizer (`xdomain.optim.Stepper`)."""
        opt.zero_grad(set_to_none=True)
        self.backward(loss, retain_graph=retain_graph)
        self.step(opt)

    def backward(
        self, loss: Tensor, *, retain_graph: bool = False, inputs: list[Tensor] | None = None
    ) -> None:
        """Accumulate the gradients of `loss`, for an update order that sums several backward
        passes into one step: BicycleGAN backpropagates the E+G loss, then a latent loss into
        G alone (`inputs`: G's parameters), then steps both optimizers. Zero the gradients
        first (`opt.zero_grad`), and finish with `step`."""
        self.stepper.backward(loss, retain_graph=retain_graph, inputs=inputs)

    def step(self, *opts: torch.optim.Optimizer) -> None:
        """Step these optimizers on the accumulated gradients (averaged over processes)."""
        self.stepper.step(*opts)

    @staticmethod
    def requires_grad(*nets: nn.Module, flag: bool) -> None:
        for net in nets:
            for p in net.parameters():
                p.requires_grad_(flag)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def translate(
        self,
        x: Any,
        *,
        target: Any = None,
        z: Any = None,
        alpha: Any = None,
        reverse: bool = False,
    ) -> Any:
        """Translate tensors in [-1, 1] ((C,H,W) or (B,C,H,W)) or PIL images (one or a list).

        Returns the same kind it was given. `target`, `z` and `alpha` are accepted only by methods
        that have that notion; passing one to a method without it is an error, not a silent ignore.
        `reverse=True` translates b -> a (methods that learn both directions).

        The one inference path: `xdomain translate`, evaluation (`translate_all`) and the
        exporters all end here; inputs are checked and converted by `xdomain.data.inputs`.
        """
        self._check_options(reverse, {"target": target, "z": z, "alpha": alpha})
        options = {"target": target, "z": z, "alpha": alpha, "reverse": reverse}
        images = inputs.as_images(x)
        with self.evaluating():
            if images is None:
                return self._translate_tensor(x, **options)
            if self.spec.kind == "points":
                raise XDomainError(
                    f"{type(self).__name__} was trained on {self.spec.dims}-D points; it"
                    " translates (N, dims) tensors, not images"
                )
            one = not isinstance(x, (list, tuple))
            if self.any_size:  # each image at its own size: one forward pass per image
                out = [
                    inputs.tensor_to_pil(
                        self._translate_tensor(
                            inputs.pil_to_tensor(im, self.spec, "none"), **options
                        )
                    )
                    for im in images
                ]
            elif images:
                y = self._translate_tensor(inputs.to_batch(images, self.spec), **options)
                out = [inputs.tensor_to_pil(t) for t in y]
            else:
                out = []
            return out[0] if one else out

    def _check_options(self, reverse: bool, given: dict[str, Any]) -> None:
        """Options this method does not have, and a converted run's missing generator, are
        one-line errors (never a silent ignore)."""
        if reverse and not self.bidirectional:
            self.generate_ba(torch.zeros(0))  # raises the one-line error
        role = "G_ba" if reverse else "G_ab"
        if role in self.untrained:
            raise XDomainError(
                f"this checkpoint was converted without the {'b -> a' if reverse else 'a -> b'}"
                f" generator ({role}); convert that official file too, or translate"
                f" {'without' if reverse else 'with'} reverse"
            )
        for name, value in given.items():
            if value is not None and name not in self.translate_options:
                valid = ", ".join(sorted(self.translate_options)) or "none"
                raise XDomainError(
                    f"{type(self).__name__}.translate does not take '{name}' "
                    f"(this method's options: {valid})"
                )

    def _translate_tensor(self, x: Tensor, *, reverse: bool, **options: Any) -> Tensor:
        """A checked tensor through the generator (on the networks' device, back on `x`'s)."""
        xb, single = self._check_input(x)
        xb = xb.to(next(self.parameters()).device, torch.float32)
        if not xb.shape[0]:
            return self._translate_empty(xb, reverse=reverse, **options).to(x.device)
        y = self.generate_ba(xb) if reverse else self.generate(xb, **options)
        y = y.to(x.device)
        return y[0] if single else y

    def _translate_empty(self, xb: Tensor, *, reverse: bool, **options: Any) -> Tensor:
        """An empty batch -> an empty result of the shape a batch would get ((0, C, H, W), or
        (0, K, C, H, W) for K outputs per input): one zero input runs through the method with
        the same options (so a wrong option is still its one-line error), then is dropped.
        Networks such as instance norm cannot run on 0 items themselves."""
        one = xb.new_zeros(1, *xb.shape[1:])
        per_input = {  # per-input tensors ((B, ...) with B = 0) get one zero row too
            k: v.new_zeros(1, *v.shape[1:])
            if isinstance(v, Tensor) and v.dim() >= 2 and v.shape[0] == 0
            else v
            for k, v in options.items()
        }
        y = self.generate_ba(one) if reverse else self.generate(one, **per_input)
        return y[:0]

    def _check_input(self, x: Tensor) -> tuple[Tensor, bool]:
        """A tensor input -> (batch, was it one item) (`xdomain.data.inputs.check_tensor`)."""
        return inputs.check_tensor(x, self.spec, any_size=self.any_size)
