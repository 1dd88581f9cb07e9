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

import errno
import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from xdomain.errors import CheckpointError, short
from xdomain.io import atomic_write_text, fsync_dir, sha256_file

FORMAT = "xdomain-checkpoint-1"
STEP_RE = re.compile(r"step-(\d{1,12})")
MAX_STATE_BYTES = 64 << 20  # a real state.json is kilobytes; refuse absurd ones before parsing


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


def step_of(name: str) -> int | None:
    """`step-0000500` -> 500; anything else (`best`, `latest`, a user's folder) -> None."""
    m = STEP_RE.fullmatch(name)
    return int(m.group(1)) if m else None


def _run_id_of(path: Path) -> str | None:
    try:
        state = json.loads((path / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return state.get("run_id") if isinstance(state, dict) else None


def clean_stale(ckpt_root: Path) -> None:
    """Remove temporary folders left by a run killed mid-save (only ours: `.tmp-*`, `.old-*`)."""
    if ckpt_root.is_dir():
        for p in ckpt_root.iterdir():
            if p.name.startswith((".tmp-", ".old-")) and p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)


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
    """Write `ckpt_root/<name>` atomically and (for step checkpoints) move `latest` to it.

    A failed write (disk full, file size limit) removes its temporary folder and raises a
    one-line CheckpointError; the checkpoints already on disk are untouched.
    """
    name = name or step_name(step)
    tmp = ckpt_root / f".tmp-{name}-{os.getpid()}"
    try:
        ckpt_root.mkdir(parents=True, exist_ok=True)
        return _save(ckpt_root, tmp, name, step, model_state, train_tensors, state, keep_last)
    except (OSError, SafetensorError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        kept = latest_name(ckpt_root)
        # safetensors reports OS errors in its own exception: "... (os error 27)"
        code = getattr(e, "errno", None)
        if code is None and (m := re.search(r"os error (\d+)", str(e))):
            code = int(m.group(1))
        why = (
            "the disk is full or a file size limit was hit"
            if code in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
            else short(getattr(e, "strerror", None) or str(e))
        )
        keep = (
            f"the last good checkpoint '{ckpt_root / kept}' is kept"
            if kept
            else "no checkpoint was written before this one"
        )
        raise CheckpointError(
            f"could not write checkpoint {name} in '{ckpt_root}': {why}; {keep}."
            " Free space and continue with --resume"
        ) from None


def _save(
    ckpt_root: Path,
    tmp: Path,
    name: str,
    step: int,
    model_state: dict[str, torch.Tensor],
    train_tensors: dict[str, torch.Tensor],
    state: dict[str, Any],
    keep_last: int,
) -> Path:
    final = ckpt_root / name
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
        integrity[fname] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    full_state = {"format": FORMAT, "step": step, "files": integrity, **state}
    atomic_write_text(tmp / "state.json", json.dumps(full_state, indent=1))
    fsync_dir(tmp)
    old = None
    if final.exists():  # re-saving the same step (e.g. `best`): swap, then delete the old one
        old = ckpt_root / f".old-{name}-{os.getpid()}"
        os.replace(final, old)
    os.replace(tmp, final)
    fsync_dir(ckpt_root)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    if step_of(name) is not None:
        atomic_write_text(ckpt_root / "latest", name + "\n")
        # retention: by step number (names sort as text only up to 7 digits), and only the
        # checkpoints this run wrote (same run_id): never another run's or a user's folder
        run_id = state.get("run_id")
        ours = [
            (step_of(p.name), p)
            for p in ckpt_root.iterdir()
            if step_of(p.name) is not None and p.is_dir() and not p.is_symlink()
        ]
        ours = sorted((s, p) for s, p in ours if s is not None and _run_id_of(p) == run_id)
        for _, p in ours[:-keep_last]:
            if p != final:
                shutil.rmtree(p, ignore_errors=True)
    return final


def _complete_steps(root: Path) -> list[Path]:
    """`root`'s step-* folders that hold a state.json, by step number."""
    if not root.is_dir():
        return []
    found = [
        (n, p)
        for p in root.iterdir()
        if (n := step_of(p.name)) is not None
        and not p.is_symlink()
        and (p / "state.json").is_file()
    ]
    return [p for _, p in sorted(found)]


def latest_name(ckpt_root: Path) -> str | None:
    """The checkpoint `ckpt_root/latest` names, if it is a valid, complete one of ckpt_root."""
    try:
        return _latest_target(ckpt_root).name
    except CheckpointError:
        return None


def _latest_target(root: Path) -> Path:
    """Read and confine `root/latest`: it must name a `step-N` folder directly inside root."""
    latest = root / "latest"
    if latest.is_symlink() or not latest.is_file():
        steps = _complete_steps(root)
        newest = steps[-1].name if steps else "step-0000500"
        raise CheckpointError(
            f"'{latest}' is missing, a symlink or not a file; write the name of a complete"
            f" step-* folder of '{root}' into it (the newest: echo {newest} > {latest})"
        )
    try:
        text = latest.read_text(errors="replace")[:100].strip()
    except OSError as e:
        raise CheckpointError(f"'{latest}' cannot be read: {e.strerror}") from None
    if step_of(text) is None:
        raise CheckpointError(
            f"'{latest}' names {short(text)}, not a step-* folder of '{root}'; write the name of"
            " a complete step-* folder into it (e.g. step-0000500)"
        )
    target = root / text
    if target.is_symlink() or not (target / "state.json").is_file():
        raise CheckpointError(
            f"'{latest}' points to '{text}', which is missing or incomplete;"
            f" point it at another step-* directory in '{root}'"
        )
    return target


def resolve(path: str | Path, which: str = "latest") -> Path:
    """A run dir, its `checkpoints/` dir or one checkpoint dir -> the checkpoint dir to load.

    `which` chooses among a run's checkpoints: `latest` (default), `best` or `step-N`.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint '{p}' does not exist")
    if (p / "state.json").is_file():
        return p
    for root in (p / "checkpoints", p):
        if not (
            (root / "latest").exists() or (root / "latest").is_symlink() or _complete_steps(root)
        ):
            continue
        if which == "latest":
            return _latest_target(root)
        name = which if which == "best" else _step_arg(which, root)
        target = root / name
        if target.is_symlink() or not (target / "state.json").is_file():
            have = ", ".join(sorted(x.name for x in root.iterdir() if (x / "state.json").is_file()))
            raise CheckpointError(
                f"'{root}' has no complete checkpoint '{name}'; available: {have or 'none'}"
            )
        return target
    raise CheckpointError(
        f"'{p}' is not an xdomain checkpoint: expected a run directory with checkpoints/latest,"
        " or a checkpoint directory with state.json"
    )


def _step_arg(which: str, root: Path) -> str:
    """`step-500`, `step-0000500` or `500` -> `step-0000500`."""
    digits = which.removeprefix("step-")
    if not digits.isdigit():
        raise CheckpointError(
            f"checkpoint choice {short(which)} is not latest, best or step-N (e.g. step-500)"
        )
    return step_name(int(digits))


def load_checkpoint(
    path: str | Path, which: str = "latest"
) -> tuple[Path, dict[str, Any], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """-> (checkpoint dir, state, model tensors, train tensors), each file verified first."""
    ckpt = resolve(path, which)
    state = read_state(ckpt)
    tensors = {}
    for fname in ("model.safetensors", "train.safetensors"):
        path_f = ckpt / fname
        want = state["files"][fname]
        if not path_f.is_file():
            raise CheckpointError(f"'{path_f}' is missing; the checkpoint is incomplete")
        size = path_f.stat().st_size
        if size != want["bytes"] or sha256_file(path_f) != want["sha256"]:
            raise CheckpointError(
                f"'{path_f}' is truncated or corrupt ({size} bytes, expected"
                f" {want['bytes']}, sha256 mismatch); use an earlier step-* checkpoint"
            )
        try:
            tensors[fname] = load_file(str(path_f))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"'{path_f}' cannot be read: {short(str(e))}") from None
    return ckpt, state, tensors["model.safetensors"], tensors["train.safetensors"]


# the fields of state.json that loading relies on, and their JSON types
STATE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "step": int,
    "method": str,
    "config": dict,
    "spec": dict,
    "files": dict,
    "rng": dict,
    "optimizers": dict,
    "schedulers": dict,
    "best": dict,
}


def read_state(ckpt: Path) -> dict[str, Any]:
    """Read and check `ckpt/state.json`: every field loading uses is present and well typed."""
    where = ckpt / "state.json"
    try:
        if where.stat().st_size > MAX_STATE_BYTES:
            raise CheckpointError(
                f"'{where}' is {where.stat().st_size} bytes, far larger than any state.json"
                " xdomain writes; it is not one of ours"
            )
        state = json.loads(where.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"'{where}' is corrupt ({short(str(e))}); use another step") from None
    except OSError as e:
        raise CheckpointError(f"'{where}' cannot be read: {e.strerror}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        got = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"'{ckpt}' is not an xdomain checkpoint (format {short(got)} in state.json, expected"
            f" {FORMAT!r}); xdomain loads the checkpoint folders that `xdomain train` writes"
        )
    for key, tp in STATE_FIELDS.items():
        value = state.get(key)
        if not isinstance(value, tp) or isinstance(value, bool):
            raise CheckpointError(
                f"'{where}': field '{key}' is {short(value)}, expected a JSON {_json_type(tp)};"
                " the file was edited or damaged: use another step-* checkpoint"
            )
    if state["step"] < 0:
        raise CheckpointError(f"'{where}': field 'step' is {state['step']}, expected >= 0")
    if state["config"].get("method") != state["method"]:
        raise CheckpointError(
            f"'{where}': field 'method' is {short(state['method'])} but its config says"
            f" {short(state['config'].get('method'))}; the file was edited or damaged"
        )
    for fname in ("model.safetensors", "train.safetensors"):
        entry = state["files"].get(fname)
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("sha256"), str)
            and isinstance(entry.get("bytes"), int)
        ):
            raise CheckpointError(
                f"'{where}': field 'files.{fname}' is {short(entry)}, expected"
                " {sha256: str, bytes: int}; use another step-* checkpoint"
            )
    for key in ("python", "numpy"):
        if not isinstance(state["rng"].get(key), list):
            raise CheckpointError(
                f"'{where}': field 'rng.{key}' is {short(state['rng'].get(key))}, expected a"
                " list; use another step-* checkpoint"
            )
    return state


def _json_type(tp: type | tuple[type, ...]) -> str:
    names = {int: "integer", str: "string", dict: "object", list: "array"}
    return " or ".join(names.get(t, t.__name__) for t in (tp if isinstance(tp, tuple) else (tp,)))


def check_finite_weights(tensors: dict[str, torch.Tensor], where: str) -> None:
    """Refuse weights holding NaN or Inf (a diverged or damaged checkpoint): translating with
    them writes black or noise images without a word."""
    for k, v in tensors.items():
        if v.is_floating_point() and v.numel() and not torch.isfinite(v).all():
            bad = int((~torch.isfinite(v)).sum())
            raise CheckpointError(
                f"{where}: weight {short(k)} holds {bad} NaN/Inf value(s) of {v.numel()}; the"
                " checkpoint is damaged or its training diverged: use another checkpoint"
            )


def load_weights(
    module: torch.nn.Module, tensors: dict[str, torch.Tensor], ckpt: Path, method: str
) -> None:
    """Load a checkpoint's model tensors into `module`, or say in one line why they do not fit."""
    own = module.state_dict()
    missing = [k for k in own if k not in tensors]
    unexpected = [k for k in tensors if k not in own]
    if missing or unexpected:
        raise CheckpointError(
            f"'{ckpt / 'model.safetensors'}' does not match method '{method}' as configured:"
            f" missing keys {short(missing[:3])}, unexpected keys {short(unexpected[:3])}"
        )
    for k, v in tensors.items():
        if v.shape != own[k].shape:
            raise CheckpointError(
                f"'{ckpt / 'model.safetensors'}': '{short(k)}' has shape {tuple(v.shape)} but"
                f" method '{method}' as configured expects {tuple(own[k].shape)}; the weights"
                " were trained with another recipe (widths, image size or channels)"
            )
    check_finite_weights(tensors, f"'{ckpt / 'model.safetensors'}'")
    module.load_state_dict(tensors)


# ----------------------------------------------------------------------------- training state


def training_state(
    method: Any, optims: dict[str, Any], scheds: dict[str, Any], scaler: Any
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """What resuming needs beyond the weights: -> (tensors for `train.safetensors`, the JSON part
    of `state.json`): the RNG states, the optimizers and schedulers, the method's training state
    outside its state_dict (a history pool) and the fp16 loss scaler."""
    tensors, rng_meta = rng_state()
    optim_meta = {}
    for name, opt in optims.items():
        t, meta = optimizer_to_flat(name, opt.state_dict())
        tensors.update(t)
        optim_meta[name] = meta
    for k, v in method.train_state().items():
        tensors[f"method/{k}"] = v.detach().contiguous().cpu()
    state: dict[str, Any] = {
        "optimizers": optim_meta,
        "schedulers": {k: s.state_dict() for k, s in scheds.items()},
        "rng": rng_meta,
    }
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    return tensors, state


def restore_training(
    path: Path,
    state: dict[str, Any],
    train_t: dict[str, torch.Tensor],
    method: Any,
    optims: dict[str, Any],
    scheds: dict[str, Any],
    scaler: Any,
) -> None:
    """The inverse of `training_state`, for checkpoint `path`; a state that does not fit this
    method's optimizers is a one-line error naming the file."""
    try:
        set_rng_state(train_t, state["rng"])
        for name, opt in optims.items():
            opt.load_state_dict(optimizer_from_flat(name, state["optimizers"][name], train_t))
        for name, s in scheds.items():
            s.load_state_dict(state["schedulers"][name])
        prefix = "method/"
        method.load_train_state(
            {k[len(prefix) :]: v for k, v in train_t.items() if k.startswith(prefix)}
        )
    except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as e:
        raise CheckpointError(
            f"'{path / 'state.json'}': the optimizer, scheduler or RNG state does not fit this"
            f" method ({short(str(e))}); use another step-* checkpoint"
        ) from None
    if scaler is not None and "scaler" in state:
        scaler.load_state_dict(state["scaler"])
