"""xdomain: one toolkit for cross-domain image translation.

m = xdomain.load("runs/dtn-digits")       # a run, its checkpoints/ or one checkpoint dir
y = m.translate(x)                        # tensors in [-1, 1] or PIL images
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from xdomain.version import __version__

if TYPE_CHECKING:
    from xdomain.methods.base import Method


def load(path: str | Path, *, device: str = "cpu", ckpt: str = "latest") -> Method:
    """Rebuild a trained method from a checkpoint directory alone (config + weights), in eval mode.

    `path` is a run directory, its `checkpoints/` or one checkpoint directory; for a run,
    `ckpt` chooses `latest` (default), `best` or `step-N`. The method carries
    `checkpoint_path`, `checkpoint_step`, `run_config` (the run's resolved config mapping) and
    `data_fingerprint` (what it was trained on; see `xdomain.fingerprint`).
    """
    import torch

    from xdomain import checkpoint
    from xdomain.config import build_config, build_method
    from xdomain.errors import CheckpointError, XDomainError, short
    from xdomain.methods.base import DataSpec, Provenance
    from xdomain.schema import from_dict
    from xdomain.sections import data_kind

    path_c, state, model_t, _ = checkpoint.load_checkpoint(path, ckpt)
    where = path_c / "state.json"
    try:
        cfg = build_config(state["config"], str(where))
        spec = from_dict(DataSpec, state["spec"], str(where), prefix="spec.")
    except XDomainError as e:
        raise CheckpointError(f"{e} (in the checkpoint's own state.json)") from None
    # the spec must describe the data the config names (a hand-edited state.json may not)
    want = (data_kind(cfg.data), cfg.data.channels, cfg.data.image_size)
    got = (spec.kind, spec.channels, spec.image_size)
    if got != want or not 1 <= spec.dims <= 4096:
        what = f"{got}" if got != want else f"dims {short(spec.dims)}"
        raise CheckpointError(
            f"'{where}': field 'spec' ({short(what)}) does not match its config {want}; the file"
            " was edited or damaged: use another step-* checkpoint"
        )
    with torch.random.fork_rng():  # loading leaves the caller's random state alone
        method = build_method(cfg, spec)
    checkpoint.load_weights(method, model_t, path_c, cfg.method)
    untrained = state.get("untrained", [])
    method.provenance = Provenance(
        checkpoint_path=path_c,
        checkpoint_step=state["step"],
        run_config=state["config"],
        data_fingerprint=state.get("data"),  # what it was trained on (xdomain.fingerprint)
        converted_from=state.get("converted_from"),  # `xdomain convert`: the official files
    )
    # networks no official file provided (`xdomain convert`)
    method.untrained = [str(u) for u in untrained] if isinstance(untrained, list) else []
    try:
        return method.to(device).eval()
    except (RuntimeError, AssertionError) as e:
        raise XDomainError(f"cannot move the model to device {device!r}: {short(str(e))}") from None


def __getattr__(name: str):
    if name == "METHODS":
        from xdomain.methods import METHODS

        return METHODS
    raise AttributeError(name)


__all__ = ["METHODS", "__version__", "load"]
