"""What every `xdomain.convert` module shares: renaming official keys onto our networks with a
full check, and reading official files without a plain unpickle.

Every failure is one `CheckpointError` line that names the file, the problem and the fix.
"""

from __future__ import annotations

import pickle
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from xdomain.errors import CheckpointError, short

DEFAULT_SOURCE = "the official state_dict"

# InstanceNorm entries of old CycleGAN .pth files (the pre-0.4 track_running_stats era); the
# official loader deletes them, the layers they belonged to have no state today
STALE_NORM_LEAVES = frozenset({"running_mean", "running_var", "num_batches_tracked"})


# ----------------------------------------------------------------------------- key helpers


def strip_data_parallel(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Keys without the `module.` prefix that nn.DataParallel adds when a wrapped net is saved."""
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state.items()}


def conv_weight(state: Mapping[str, Tensor], key: str, source: str, what: str, role: str) -> Tensor:
    """`state[key]`, which must be a conv weight (4-D), or a CheckpointError saying so."""
    w = state.get(key)
    if not isinstance(w, Tensor) or w.dim() != 4:
        found = "absent" if w is None else f"a {short(getattr(w, 'shape', type(w).__name__))}"
        raise CheckpointError(
            f"{source}: no conv weight {key!r} ({role}; {found}), so this is not {what}; check"
            " that the file holds this network"
        )
    return w


def norm_kind(state: Mapping[str, Tensor], conv: str, norm: str, source: str, what: str) -> str:
    """The norm of an official net, `instance` or `batch`, from the official bias rule: the conv
    before a norm has a bias exactly when the norm is InstanceNorm; BatchNorm leaves `weight`."""
    if f"{conv}.bias" in state:
        return "instance"
    if f"{norm}.weight" in state:
        return "batch"
    raise CheckpointError(
        f"{source}: neither {conv}.bias (instance norm) nor {norm}.weight (batch norm) is"
        f" present, so this is not {what} with norm instance or batch (norm 'none' is not"
        " supported)"
    )


def remap(
    state: Mapping[str, Tensor],
    table: Mapping[str, str],
    net: nn.Module,
    what: str,
    hint: str,
    source: str,
) -> dict[str, Tensor]:
    """Rename `state` by module path through `table` (official -> ours) and check the result
    against `net` (usually built on the meta device): every key known, every shape right,
    nothing missing. Drops stale InstanceNorm statistics; adds a missing BatchNorm
    `num_batches_tracked` as 0 (pre-0.4 files have none; it only matters for momentum=None).
    """
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    modules = dict(net.named_modules())
    back = {ours: official for official, ours in table.items()}
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        module, _, leaf = key.rpartition(".")
        ours = table.get(module)
        layer = modules.get(ours) if ours is not None else None
        stale = isinstance(layer, nn.InstanceNorm2d) and not layer.track_running_stats
        if stale and leaf in STALE_NORM_LEAVES:
            continue  # statistics of a layer that keeps none (old CycleGAN releases)
        target = f"{ours}.{leaf}"
        if ours is None or target not in expected:
            raise CheckpointError(
                f"{source}: unexpected key {short(key)} for {what} (expected {hint}); check that"
                " the file holds this network"
            )
        if not isinstance(value, Tensor):
            raise CheckpointError(
                f"{source}: {key!r} holds a {type(value).__name__}, not a tensor; the file is"
                " not a state_dict"
            )
        if tuple(value.shape) != expected[target]:
            raise CheckpointError(
                f"{source}: {key!r} has shape {tuple(value.shape)}, but {what} with the"
                f" architecture read from the other keys needs {expected[target]}; the file"
                " mixes layers of different networks"
            )
        out[target] = value
    for name, layer in modules.items():
        if isinstance(layer, nn.BatchNorm2d) and layer.track_running_stats:
            out.setdefault(f"{name}.num_batches_tracked", torch.zeros((), dtype=torch.long))
    missing = [k for k in expected if k not in out]
    if missing:
        module, _, leaf = missing[0].rpartition(".")
        official = f"{back.get(module, module)}.{leaf}"
        raise CheckpointError(
            f"{source}: key {official!r} is missing ({len(missing)} missing in all) for {what};"
            " the file is incomplete or holds another network"
        )
    return out


# ---------------------------------------------------------------------------- file readers


def load_weights_only(path: Path, *, what: str, allowed: Iterable[Any] = ()) -> object:
    """`torch.load(path, map_location="cpu", weights_only=True)` (safetensors for
    `.safetensors`), with `allowed` added to torch's allow-list for this call. Any failure is one
    CheckpointError line."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; check the path")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointError(
                f"{path}: not a readable safetensors file ({reason(e)}); it may be truncated:"
                " download or export it again"
            ) from None
    try:
        with torch.serialization.safe_globals(list(allowed)), warnings.catch_warnings():
            # a raw pickle's protocol warning would only precede the real error below
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        name = re.search(r"GLOBAL ([\w.]+)", str(e))
        if name:
            raise refused(path, f"the Python global {short(name[1])}", what) from None
        raise CheckpointError(
            f"{path}: the weights-only loader cannot read it as {what} ({reason(e)}), so it is"
            " not a plain torch.save file of tensors and was refused; if you trust the file,"
            " load it yourself and re-save torch.save(net.state_dict(), path)"
        ) from None
    except Exception as e:  # zip, EOF, struct and storage errors of a damaged file
        raise corrupt(path, e, what) from None


def refused(path: Path, request: str, what: str) -> CheckpointError:
    """The error for a pickle that asks for something outside the allow-list; `request` is e.g.
    "the Python global 'posix.system'"."""
    return CheckpointError(
        f"{path}: the file wants {request}, which is not allowed in {what}, so it was refused"
        " (unpickling it could run code); if you trust the file, re-save its weights with"
        " torch.save(net.state_dict(), path)"
    )


def corrupt(path: Path, error: BaseException, what: str) -> CheckpointError:
    """The error for a file that is not a (complete) PyTorch file."""
    return CheckpointError(
        f"{path}: not {what} in a readable PyTorch file ({reason(error)}); it may be truncated"
        " or corrupt: download or export it again"
    )


def reason(error: BaseException) -> str:
    """A one-line, bounded description of `error` (torch's own messages run to 20 lines)."""
    text = str(error)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(error).__name__
    return first if len(first) <= 120 else f"{first[:105]}... ({len(first)} chars)"


def as_state_dict(obj: object, path: Path, what: str) -> dict[str, Tensor]:
    """`obj` as a plain {name: tensor} dict, or a CheckpointError naming what it is instead."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{path}: holds a {type(obj).__name__}, not {what} (parameter names -> tensors);"
            " save the network's state_dict()"
        )
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise CheckpointError(
                f"{path}: entry {short(key)} holds a {type(value).__name__}, not a tensor, so"
                f" this is not {what}; pass the file that holds the network's state_dict()"
            )
    return dict(obj)
