"""Helpers for the official-weight parity tests (fixtures in `../shared/reference`).

Each fixture holds an official `state_dict` (`state/<key>`, float16 for floating tensors), inputs
and the official outputs in train and eval mode (see the fixtures' README). A parity test builds
our network, maps the official keys through the same converter a user's checkpoint goes through,
loads strictly and compares both modes at atol 1e-4.

The folder is read in place; `XDOMAIN_REFERENCE` points elsewhere. Where it is absent the tests
skip with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

ATOL = 1e-4


def reference_dir() -> Path:
    env = os.environ.get("XDOMAIN_REFERENCE")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "reference"


def load_fixture(name: str) -> dict[str, Tensor]:
    """All tensors of `<name>.safetensors`, or skip the test with a clear reason; under CI
    (`CI=true`, where `shared/` is laid beside the clone) a missing fixture is a failure."""
    from safetensors.torch import load_file

    path = reference_dir() / f"{name}.safetensors"
    if not path.is_file():
        why = f"parity fixture {path} is absent (set XDOMAIN_REFERENCE to the folder holding it)"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"CI: {why}")
        pytest.skip(why)
    return load_file(str(path))


def official_state(fx: dict[str, Tensor]) -> dict[str, Tensor]:
    """The official state_dict stored in a fixture, floating tensors cast back to float32."""
    return {
        k[len("state/") :]: (v.float() if v.is_floating_point() else v)
        for k, v in fx.items()
        if k.startswith("state/")
    }


def outputs(fx: dict[str, Tensor], mode: str) -> list[Tensor] | Tensor:
    """`output_<mode>` as one tensor, or the flattened list `output_<mode>.0, .1, ...`."""
    if f"output_{mode}" in fx:
        return fx[f"output_{mode}"]
    keys = sorted(
        (k for k in fx if k.startswith(f"output_{mode}.")),
        key=lambda k: [int(p) for p in k.split(".")[1:]],
    )
    return [fx[k] for k in keys]


def flatten(out: object) -> list[Tensor] | Tensor:
    """A network's output (tensor, or nested tuples/lists of tensors) flattened like a fixture."""
    if isinstance(out, Tensor):
        return out
    flat: list[Tensor] = []
    for o in out:  # type: ignore[union-attr]
        f = flatten(o)
        flat.extend([f] if isinstance(f, Tensor) else f)
    return flat


def check_parity(
    name: str,
    build: Callable[[], nn.Module],
    convert: Callable[[dict[str, Tensor]], dict[str, Tensor]],
    forward: Callable[[nn.Module, dict[str, Tensor]], object] | None = None,
) -> None:
    """Load fixture `name` into `build()` through `convert`, compare train and eval outputs.

    `forward(net, fx)` runs the network on the fixture's (cloned) inputs; the default calls
    `net(fx["input"].clone())`.
    """
    fx = load_fixture(name)
    state = convert(official_state(fx))
    run = forward or (lambda net, f: net(f["input"].clone()))
    for mode in ("train", "eval"):
        torch.manual_seed(0)
        net = build()
        net.load_state_dict(state, strict=True)
        net.train(mode == "train")
        with torch.set_grad_enabled(mode == "train"):
            got = flatten(run(net, fx))
        want = outputs(fx, mode)
        if isinstance(want, Tensor):
            assert isinstance(got, Tensor), f"{name}: expected one output, got {len(got)}"
            torch.testing.assert_close(got.detach(), want, atol=ATOL, rtol=ATOL)
        else:
            assert not isinstance(got, Tensor) and len(got) == len(want), (
                f"{name} ({mode}): {len(want)} outputs expected"
            )
            for i, (g, w) in enumerate(zip(got, want, strict=True)):
                torch.testing.assert_close(
                    g.detach(), w, atol=ATOL, rtol=ATOL, msg=lambda m, i=i: f"output {i}: {m}"
                )
