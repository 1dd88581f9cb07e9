"""Checkpoints: safetensors tensors + a JSON state, written atomically, verified on load.

Layout of one checkpoint directory `checkpoints/step-000500/`:
- `model.safetensors`  the method's state_dict (all networks, buffers)
- `train.safetensors`  optimizer tensors (Adam moments, step counters) and the torch RNG states
- `state.json`         step, resolved config, data spec, optimizer/scheduler structure, python and
                       numpy RNG states, sha256 + size of both tensor files
`checkpoints/latest` names the newest complete one. A checkpoint is first written to a temporary
directory, fsynced and renamed, so a run killed at any moment leaves only complete checkpoints.
Nothing here unpickles: safetensors and JSON only.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from xdomain.errors import CheckpointError

FORMAT = "xdomain-checkpoint-1"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- optimizer state


def optimizer_to_flat(name: str, sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state_dict into tensors (for safetensors) and JSON-able structure."""
    tensors: dict[str, torch.Tensor] = {}
    state_meta: dict[str, dict[str, Any]] = {}
    for pid, pstate in sd["state"].items():
        meta: dict[str, Any] = {}
        for k, v in pstate.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim/{name}/{pid}/{k}"] = v.detach().contiguous().cpu()
                meta[k] = {"tensor": True}
            else:
                meta[k] = {"value": v}
        state_meta[str(pid)] = meta
    return tensors, {"state": state_meta, "param_groups": sd["param_groups"]}


def optimizer_from_flat(name: str, meta: dict, tensors: dict[str, torch.Tensor]) -> dict:
    state = {}
    for pid, pmeta in meta["state"].items():
        state[int(pid)] = {
            k: (tensors[f"optim/{name}/{pid}/{k}"] if v.get("tensor") else v["value"])
            for k, v in pmeta.items()
        }
    return {"state": state, "param_groups": meta["param_groups"]}


# ----------------------------------------------------------------------------- RNG


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = s
    np_state = np.random.get_state()
    meta = {
        "python": _jsonable(random.getstate()),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
    }
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng/torch"])
    cuda = sorted(k for k in tensors if k.startswith("rng/cuda/"))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    random.setstate(_tupled(meta["python"]))
    n = meta["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), *n[2:]))


def _jsonable(x: Any) -> Any:
    return [_jsonable(v) for v in x] if isinstance(x, (tuple, list)) else x


def _tupled(x: Any) -> Any:
    return tuple(_tupled(v) for v in x) if isinstance(x, list) else x


# ----------------------------------------------------------------------------- save / load


def step_name(step: int) -> str:
    return f"step-{step:07d}"


def save_checkpoint(
    ckpt_root: Path,
    step: int,
    model_state: dict[str, torch.Tensor],
    train_tensors: dict[str, torch.Tensor],
    state: dict[str, Any],
    *,
    keep_last: int,
    name: str | None = None,
) -> Path:
    """Write `ckpt_root/<name>` atomically and (for step checkpoints) move `latest` to it."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    name = name or step_name(step)
    final = ckpt_root / name
    tmp = ckpt_root / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    files = {
        "model.safetensors": {k: v.detach().contiguous().cpu() for k, v in model_state.items()},
        "train.safetensors": train_tensors,
    }
    integrity = {}
    for fname, tensors in files.items():
        path = tmp / fname
        save_file(tensors, str(path), metadata={"format": FORMAT})
        with open(path, "rb+") as f:
            os.fsync(f.fileno())
        integrity[fname] = {"sha256": _sha256(path), "bytes": path.stat().st_size}
    full_state = {"format": FORMAT, "step": step, "files": integrity, **state}
    _write_text_atomic(tmp / "state.json", json.dumps(full_state, indent=1))
    _fsync_dir(tmp)
    old = None
    if final.exists():  # re-saving the same step (e.g. `best`): swap, then delete the old one
        old = ckpt_root / f".old-{name}-{os.getpid()}"
        os.replace(final, old)
    os.replace(tmp, final)
    _fsync_dir(ckpt_root)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    if name.startswith("step-"):
        _write_text_atomic(ckpt_root / "latest", name + "\n")
        steps = sorted(p for p in ckpt_root.glob("step-*") if p.is_dir())
        for p in steps[:-keep_last]:
            shutil.rmtree(p, ignore_errors=True)
    return final


def resolve(path: str | Path) -> Path:
    """A run dir, its `checkpoints/` dir or one checkpoint dir -> the checkpoint dir to load."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint '{p}' does not exist")
    if (p / "state.json").is_file():
        return p
    for root in (p / "checkpoints", p):
        latest = root / "latest"
        if latest.is_file():
            target = root / latest.read_text().strip()
            if not (target / "state.json").is_file():
                raise CheckpointError(
                    f"'{latest}' points to '{target.name}', which is missing or incomplete;"
                    f" point it at another step-* directory in '{root}'"
                )
            return target
    raise CheckpointError(
        f"'{p}' is not an xdomain checkpoint: expected a run directory with checkpoints/latest,"
        " or a checkpoint directory with state.json"
    )


def load_checkpoint(
    path: str | Path,
) -> tuple[Path, dict[str, Any], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """-> (checkpoint dir, state, model tensors, train tensors), each file verified first."""
    ckpt = resolve(path)
    try:
        state = json.loads((ckpt / "state.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(
            f"'{ckpt / 'state.json'}' is corrupt ({e}); use another step"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"'{ckpt}' is not an xdomain checkpoint (format {state.get('format')!r}"
            f" in state.json, expected {FORMAT!r}); official weights load through the converters"
        )
    tensors = {}
    for fname in ("model.safetensors", "train.safetensors"):
        path_f = ckpt / fname
        want = state["files"].get(fname, {})
        if not path_f.is_file():
            raise CheckpointError(f"'{path_f}' is missing; the checkpoint is incomplete")
        size = path_f.stat().st_size
        if size != want.get("bytes") or _sha256(path_f) != want.get("sha256"):
            raise CheckpointError(
                f"'{path_f}' is truncated or corrupt ({size} bytes, expected"
                f" {want.get('bytes')}, sha256 mismatch); use an earlier step-* checkpoint"
            )
        try:
            tensors[fname] = load_file(str(path_f))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"'{path_f}' cannot be read: {e}") from None
    return ckpt, state, tensors["model.safetensors"], tensors["train.safetensors"]
