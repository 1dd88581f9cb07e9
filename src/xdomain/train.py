"""The Trainer: data, device, precision, processes, schedule, logging, samples, evaluation,
checkpoints and exact resume. It knows nothing about any single method: a method is a `Method`
whose `train_step` owns its update order.
"""

from __future__ import annotations

import json
import os
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from xdomain import checkpoint as ckpt
from xdomain import rundir
from xdomain.config import RunConfig, to_dict, to_yaml
from xdomain.config import build_method as config_build_method
from xdomain.datamodule import TwoDomainData, build_data
from xdomain.errors import (
    CheckpointError,
    ConfigError,
    NonFiniteLossError,
    XDomainError,
    short,
)
from xdomain.fingerprint import compare as compare_fingerprints
from xdomain.fingerprint import data_fingerprint
from xdomain.io import atomic_write_text
from xdomain.methods import METHODS
from xdomain.methods.base import Method
from xdomain.optim import Stepper, all_reduce_mean, check_finite
from xdomain.outputs import check_run_out
from xdomain.version import __version__

# keys a resumed run may change: extending a run, or watching it differently
RESUMABLE_CHANGES = {"train.steps", "train.progress", "train.log_every"}


def _config_diff(saved: Any, now: Any, prefix: str = "") -> str | None:
    """The first dotted key whose value differs (ignoring RESUMABLE_CHANGES), else None.

    Two configs that differ as a whole (one missing, not a mapping) differ at "the whole config":
    an empty key must never read as "no difference".
    """
    if not prefix and not (isinstance(saved, dict) and isinstance(now, dict)):
        return "the whole config"
    if isinstance(saved, dict) and isinstance(now, dict):
        for k in sorted(set(saved) | set(now)):
            d = _config_diff(saved.get(k), now.get(k), f"{prefix}{k}.")
            if d:
                return d
        return None
    key = prefix[:-1]
    if key in RESUMABLE_CHANGES:
        return None
    same = (list(saved) if isinstance(saved, tuple) else saved) == (
        list(now) if isinstance(now, tuple) else now
    )
    return None if same else key


def make_accelerator(cfg: RunConfig) -> Any:
    from accelerate import Accelerator

    t = cfg.train
    cuda = torch.cuda.is_available()
    if t.device == "cuda" and not cuda:
        raise ConfigError("train.device=cuda but no CUDA device is visible; use train.device=cpu")
    on_cpu = t.device == "cpu" or not cuda
    if t.precision == "fp16" and on_cpu:
        raise ConfigError(
            "train.precision=fp16 needs a CUDA GPU (it uses a loss scaler); on CPU use bf16 or fp32"
        )
    mp = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[t.precision]
    if t.threads > 0:
        torch.set_num_threads(t.threads)
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        # Accelerate keeps one state per process; a second run in the same process (the Python
        # API, benchmarks comparing fp32 with bf16) may ask for another precision or device
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
    return Accelerator(cpu=on_cpu, mixed_precision=mp)


def lr_lambda(steps: int, decay_start: int | None):
    """Constant, then linear decay to 0 at `steps` (CycleGAN/StarGAN style)."""

    def f(step: int) -> float:
        if decay_start is None or step < decay_start:
            return 1.0
        return max(0.0, 1.0 - (step - decay_start) / float(steps - decay_start))

    return f


def build_method(cfg: RunConfig, data: TwoDomainData) -> Method:
    """The method for training on `data` (its layout checked first): `config.build_method`."""
    check_layout(cfg.method, METHODS[cfg.method].layout, cfg.data)
    return config_build_method(cfg, data.spec)


def check_layout(method: str, layout: str, data: Any) -> None:
    """The method's kind of data (`Method.layout`) against what `data` configures."""
    given = "labelled" if data.sources else "paired" if data.paired else "unpaired"
    if given == layout:
        return
    want = {
        "labelled": "labelled data sets: set data.sources (e.g. [digits-styled])",
        "paired": "aligned pairs: set data.paired (e.g. glyphs2digits, edges2fashion or a"
        " folder of AB images)",
        "unpaired": "two unpaired domains (data.a, data.b or data.root)",
    }[layout]
    extra = {"labelled": "data.sources", "paired": "data.paired", "unpaired": ""}[given]
    tail = f"; remove {extra}" if extra else ""
    raise ConfigError(f"method {method} trains on {want}{tail}")


class Trainer:
    """Owns one run directory (locked while it lives) and trains one method in it.

    `overwrite` replaces a previous run in `out`; `resume` continues the checkpoint that
    `out/checkpoints/latest` names, refusing a config that differs from the one stored in it.
    """

    def __init__(
        self,
        cfg: RunConfig,
        out: str | Path,
        *,
        resume: bool = False,
        overwrite: bool = False,
    ) -> None:
        self.cfg, self.out, self.resume = cfg, Path(out), resume
        if resume and overwrite:
            raise ConfigError("--resume and --overwrite exclude each other; choose one")
        self.acc = make_accelerator(cfg)
        self.main = self.acc.is_main_process
        self.ckpt_root = self.out / "checkpoints"
        if resume and not self.ckpt_root.is_dir():  # before the lock creates the folder
            raise XDomainError(
                f"--resume: '{self.out}' has no checkpoint yet; start without --resume"
            )
        check_run_out(self.out)  # not inside another run's files (before the lock file)
        self.lock = rundir.open_run_dir(self.out) if self.main else None
        try:
            loaded = self._prepare_out_dir(overwrite)
            self._build(loaded)
        except BaseException:
            self.close()
            raise

    def _build(self, loaded: Any) -> None:
        cfg = self.cfg
        # before the data are built: rendering 20k digits to learn they are the wrong kind costs
        check_layout(cfg.method, METHODS[cfg.method].layout, cfg.data)
        self.data = build_data(cfg.data, n_val=cfg.eval.n_val if cfg.eval.select else 0)
        self.method = build_method(cfg, self.data).to(self.acc.device)
        self.method.attach(Stepper(self.acc))
        if self.main:
            self.method.artifact_dir = self.out / "figures"
        self.method.setup(self.data)
        self.optims = self.method.optimizers()
        self.scheds = {
            k: torch.optim.lr_scheduler.LambdaLR(
                o, lr_lambda(cfg.train.steps, cfg.train.decay_start)
            )
            for k, o in self.optims.items()
        }
        self.step = 0
        self.best: dict[str, Any] = {}
        # one id per run: retention deletes only checkpoints carrying it
        self.run_id = uuid.uuid4().hex
        # per-process randomness (dropout, noise, pools) after the shared init; a resumed run
        # replaces it with the RNG state saved in the checkpoint
        torch.manual_seed(cfg.seed * 1000 + self.acc.process_index)
        if loaded is not None:
            self._restore(*loaded)

    def close(self) -> None:
        """Release the run directory (also done at the end of `fit`)."""
        if self.lock is not None:
            self.lock.release()

    # ------------------------------------------------------------------ setup helpers
    def _prepare_out_dir(self, overwrite: bool) -> Any:
        """Check the run directory against what was asked; -> the checkpoint to resume or None.

        Every check runs before anything is written: a refused run changes nothing on disk.
        """
        cfg_path = self.out / "config.yaml"
        loaded = None
        self.data_fp = data_fingerprint(self.cfg.data)
        if self.resume:
            loaded = ckpt.load_checkpoint(self.ckpt_root)
            path, state = loaded[0], loaded[1]
            diff = (
                "method"
                if state["method"] != self.cfg.method
                else _config_diff(state["config"], to_dict(self.cfg))
            )
            if diff:
                raise ConfigError(
                    f"--resume: the config differs from the one stored in '{path}' at '{diff}';"
                    " resume with the same recipe and overrides (only train.steps may grow),"
                    " or start a new --out directory"
                )
            if self.cfg.train.steps < state["step"]:
                raise ConfigError(
                    f"--resume: train.steps={self.cfg.train.steps} is below the step of"
                    f" '{path}' ({state['step']}); give train.steps >= {state['step']}"
                )
            changed = compare_fingerprints(state.get("data"), self.data_fp)
            if changed and self.main:
                tqdm.write(f"warning: --resume: {changed}")
        elif self.main:
            rundir.check_fresh(self.out, overwrite=overwrite)
        if self.main:
            ckpt.clean_stale(self.ckpt_root)
            (self.out / "samples").mkdir(exist_ok=True)
            atomic_write_text(cfg_path, to_yaml(self.cfg))
            if not self.resume:  # the log's first line: what this run trains on
                self.log(
                    {
                        "step": 0,
                        "kind": "header",
                        "method": self.cfg.method,
                        "data_fingerprint": self.data_fp["id"],
                        "data_sources": self.data_fp["sources"],
                        "xdomain_version": __version__,
                    }
                )
        return loaded

    def _state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors, rng_meta = ckpt.rng_state()
        optim_meta = {}
        for name, opt in self.optims.items():
            t, meta = ckpt.optimizer_to_flat(name, opt.state_dict())
            tensors.update(t)
            optim_meta[name] = meta
        # state outside the method's state_dict (a history pool): training state, not weights
        for k, v in self.method.train_state().items():
            tensors[f"method/{k}"] = v.detach().contiguous().cpu()
        state = {
            "method": self.cfg.method,
            "config": to_dict(self.cfg),
            "spec": self.method.spec.to_dict(),
            "optimizers": optim_meta,
            "schedulers": {k: s.state_dict() for k, s in self.scheds.items()},
            "rng": rng_meta,
            "best": self.best,
            "run_id": self.run_id,
            "data": self.data_fp,
            "xdomain_version": __version__,
        }
        if self.acc.scaler is not None:
            state["scaler"] = self.acc.scaler.state_dict()
        return tensors, state

    def save(self, name: str | None = None) -> None:
        if not self.main:
            return
        tensors, state = self._state()
        ckpt.save_checkpoint(
            self.ckpt_root,
            self.step,
            self.method.state_dict(),
            tensors,
            state,
            keep_last=self.cfg.train.keep_last,
            name=name,
        )

    def _restore(
        self,
        path: Path,
        state: dict[str, Any],
        model_t: dict[str, torch.Tensor],
        train_t: dict[str, torch.Tensor],
    ) -> None:
        """Continue exactly where checkpoint `path` stopped (weights, optimizers, RNG, logs)."""
        where = path / "state.json"
        ckpt.load_weights(self.method, model_t, path, self.cfg.method)
        try:
            ckpt.set_rng_state(train_t, state["rng"])
            for name, opt in self.optims.items():
                opt.load_state_dict(
                    ckpt.optimizer_from_flat(name, state["optimizers"][name], train_t)
                )
            for name, s in self.scheds.items():
                s.load_state_dict(state["schedulers"][name])
            prefix = "method/"
            self.method.load_train_state(
                {k[len(prefix) :]: v for k, v in train_t.items() if k.startswith(prefix)}
            )
        except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as e:
            raise CheckpointError(
                f"'{where}': the optimizer, scheduler or RNG state does not fit this method"
                f" ({short(str(e))}); use another step-* checkpoint"
            ) from None
        if self.acc.scaler is not None and "scaler" in state:
            self.acc.scaler.load_state_dict(state["scaler"])
        self.step = state["step"]
        self.best = state["best"]
        self.run_id = state.get("run_id") or self.run_id
        self._truncate_logs()
        if self.main:
            tqdm.write(f"resumed from {path} at step {self.step}")

    def _truncate_logs(self) -> None:
        """Drop metrics logged after the checkpoint we resume from (they will be logged again)."""
        path = self.out / "metrics.jsonl"
        if not self.main or not path.is_file():
            return
        keep = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line)["step"] <= self.step:
                    keep.append(line)
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut by the kill
        atomic_write_text(path, "".join(x + "\n" for x in keep))  # a kill keeps the old log

    # ------------------------------------------------------------------ the loop
    def log(self, record: dict[str, Any]) -> None:
        if not self.main:
            return
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if not hasattr(self, "tb"):  # the header, written before TensorBoard opens
            return
        for k, v in record.items():
            if k not in ("step", "kind", "time") and isinstance(v, (int, float)):
                self.tb.add_scalar(f"{record['kind']}/{k}", v, record["step"])

    def evaluate(self) -> dict[str, float]:
        from xdomain.evaluate import evaluate

        # fork_rng: evaluation (and a judge trained on first use) must not move the training RNG,
        # or a resumed run would diverge from the uninterrupted one
        with torch.random.fork_rng():
            metrics = evaluate(self.method, self.data, self.cfg.eval) if self.main else {}
        self.acc.wait_for_everyone()
        return metrics

    def _maybe_best(self, metrics: dict[str, float]) -> None:
        key = self.cfg.eval.select
        if not key or key not in metrics:
            return
        better = (
            not self.best
            or (self.cfg.eval.select_mode == "max" and metrics[key] > self.best["value"])
            or (self.cfg.eval.select_mode == "min" and metrics[key] < self.best["value"])
        )
        if better:
            self.best = {"metric": key, "value": metrics[key], "step": self.step}
            self.save(name="best")

    def fit(self) -> dict[str, float]:
        cfg, t = self.cfg, self.cfg.train
        if self.main:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.out / "tb"), purge_step=self.step or None)
        stream = self.data.stream(
            start_step=self.step, rank=self.acc.process_index, world=self.acc.num_processes
        )
        fixed = {k: v.to(self.acc.device) for k, v in self.data.fixed().items()}
        bar = tqdm(
            total=t.steps,
            initial=self.step,
            disable=not (t.progress and self.main),
            desc=f"{cfg.method}",
            unit="it",
            dynamic_ncols=True,
        )
        self.method.train()
        # a method whose first step leaves one optimizer idle (one that updates every k-th step)
        # steps that optimizer's schedule all the same: the order warning does not apply
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
        t0, step0 = time.perf_counter(), self.step
        try:
            while self.step < t.steps:
                batch = {k: v.to(self.acc.device) for k, v in next(stream).items()}
                with self.acc.autocast():
                    logs = self.method.train_step(batch, self.step)
                check_finite(logs, self.step)
                if self.acc.num_processes > 1:
                    self._sync_buffers()
                for s in self.scheds.values():
                    s.step()
                self.step += 1
                bar.update(1)
                if self.step % t.log_every == 0 or self.step == t.steps:
                    rate = (self.step - step0) / max(time.perf_counter() - t0, 1e-9)
                    self.log({"step": self.step, "kind": "train", **logs, "it_per_s": rate})
                    bar.set_postfix({k: f"{v:.3g}" for k, v in list(logs.items())[:4]})
                if self.main and (self.step % t.sample_every == 0 or self.step == t.steps):
                    sample = self.out / "samples" / f"step-{self.step:07d}.png"
                    with torch.random.fork_rng():
                        self.method.visualize(fixed, sample)
                    self.method.train()
                    self._sample_to_tensorboard(sample)
                if self.step % cfg.eval.every == 0 or self.step == t.steps:
                    metrics = self.evaluate()
                    self.method.train()
                    if self.main:
                        self.log({"step": self.step, "kind": "eval", **metrics})
                        bar.write(
                            f"step {self.step}: "
                            + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
                        )
                    self._maybe_best(metrics)
                if self.step % t.ckpt_every == 0 or self.step == t.steps:
                    self.save()
        except NonFiniteLossError as e:
            bar.close()
            kept = ckpt.latest_name(self.ckpt_root)
            where = (
                f"last good checkpoint: {self.ckpt_root / kept}"
                if kept
                else "no checkpoint was written before it"
            )
            raise NonFiniteLossError(f"{e} ({where})") from None
        except RuntimeError as e:
            if self.acc.num_processes > 1 and _lost_peer(e):
                kept = ckpt.latest_name(self.ckpt_root)
                where = (
                    f"resume from {self.ckpt_root / kept} by restarting every rank with --resume"
                    if kept
                    else "no checkpoint was written yet: start the run again"
                )
                raise XDomainError(
                    f"rank {self.acc.process_index} of {self.acc.num_processes} lost a peer"
                    f" process at step {self.step} (another rank stopped or was killed:"
                    f" {short(str(e).splitlines()[0] if str(e) else type(e).__name__, 120)});"
                    f" {where}"
                ) from None
            raise
        finally:
            bar.close()
            if self.main:
                self.tb.close()
            if self.step < t.steps:  # stopped early: free the run directory now
                self.close()
        final = {}
        if self.main:
            final = self._final_metrics()
            from xdomain.report import write_report

            write_report(self.out, sample_rows=self.method.sample_rows)
        self.close()
        return final

    def _sample_to_tensorboard(self, png: Path) -> None:
        """The sample grid as a TensorBoard image too (IMAGES tab), beside the scalars."""
        if png.is_file():
            import numpy as np
            from PIL import Image

            with Image.open(png) as im:
                self.tb.add_image(
                    "samples", np.asarray(im.convert("RGB")), self.step, dataformats="HWC"
                )

    def _sync_buffers(self) -> None:
        """Average float buffers (batch-norm running statistics) over processes.

        Gradients are averaged in `Method.update`, so parameters stay identical; buffers are
        updated by each process's own forward passes and would drift apart without this.
        """
        all_reduce_mean(self.acc, [b for b in self.method.buffers() if b.is_floating_point()])

    def _final_metrics(self) -> dict[str, float]:
        """The last eval record (and the best checkpoint's, when one is selected)."""
        records = [json.loads(x) for x in (self.out / "metrics.jsonl").read_text().splitlines()]
        evals = [r for r in records if r.get("kind") == "eval"]
        out = {k: v for k, v in (evals[-1] if evals else {}).items() if k not in ("kind",)}
        if self.best:
            out["best_step"] = self.best["step"]
            out[f"best_{self.best['metric']}"] = self.best["value"]
        out["data_fingerprint"] = self.data_fp["id"]
        atomic_write_text(self.out / "final_metrics.json", json.dumps(out, indent=1))
        return out


# what gloo, NCCL and the TCP store say when a peer process has gone away
_PEER_GONE = (
    "connection reset by peer",
    "connection closed by peer",
    "broken pipe",
    "connection refused",
    "gloo",
    "nccl",
    "socket timeout",
    "timed out",
)


def _lost_peer(e: RuntimeError) -> bool:
    text = f"{type(e).__name__} {e}".lower()
    return "distbackenderror" in text or any(marker in text for marker in _PEER_GONE)


def train(
    cfg: RunConfig, out: str | Path, *, resume: bool = False, overwrite: bool = False
) -> dict[str, float]:
    """Train a run to `cfg.train.steps`; returns the final metrics."""
    trainer = Trainer(cfg, out, resume=resume, overwrite=overwrite)
    try:
        return trainer.fit()
    finally:
        trainer.close()
