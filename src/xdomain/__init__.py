"""xdomain: one toolkit for cross-domain image translation.

m = xdomain.load("runs/dtn-digits")       # a run, its checkpoints/ or one checkpoint dir
y = m.translate(x)                        # tensors in [-1, 1] or PIL images
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from xdomain.methods.base import Method


def load(path: str | Path, *, device: str = "cpu") -> Method:
    """Rebuild a trained method from a checkpoint directory alone (config + weights), in eval mode.

    `method.run_config` holds the run's resolved config as a plain mapping.
    """
    from xdomain import checkpoint
    from xdomain.config import build_config
    from xdomain.errors import CheckpointError
    from xdomain.methods import METHODS
    from xdomain.methods.base import DataSpec

    ckpt, state, model_t, _ = checkpoint.load_checkpoint(path)
    try:
        cfg = build_config(state["config"], f"{ckpt / 'state.json'}")
        spec = DataSpec(**state["spec"])
    except (KeyError, TypeError) as e:
        raise CheckpointError(
            f"'{ckpt / 'state.json'}' lacks a valid config or spec ({e})"
        ) from None
    method = METHODS[cfg.method](cfg.model, spec)
    missing, unexpected = method.load_state_dict(model_t, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"'{ckpt}' does not match method '{cfg.method}' as configured: missing keys "
            f"{missing[:3]}, unexpected keys {unexpected[:3]}"
        )
    method.run_config = state["config"]
    method.checkpoint_step = int(state["step"])
    return method.to(device).eval()


def __getattr__(name: str):
    if name == "METHODS":
        from xdomain.methods import METHODS

        return METHODS
    raise AttributeError(name)


__all__ = ["METHODS", "__version__", "load"]
