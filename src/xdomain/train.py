"""The Trainer: data, device, precision, processes, schedule, logging, samples, evaluation,
checkpoints and exact resume. It knows nothing about any single method: a method is a `Method`
whose `train_step` owns its update order.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm.auto import tqdm

from xdomain import checkpoint as ckpt
from xdomain.config import RunConfig, to_dict, to_yaml
from xdomain.datamodule import TwoDomainData, build_data
from xdomain.errors import ConfigError, NonFiniteLossError, XDomainError
from xdomain.methods import METHODS
from xdomain.methods.base import Method, check_finite

# keys a resumed run may change: extending a run, or watching it differently
RESUMABLE_CHANGES = {"train.steps", "train.progress", "train.log_every"}


def _config_diff(saved: Any, now: Any, prefix: str = "") -> str | None:
    """The first dotted key whose value differs (ignoring RESUMABLE_CHANGES), else None."""
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


def build_method(cfg: RunConfig, data: TwoDomainData | None, spec: Any = None) -> Method:
    torch.manual_seed(cfg.seed)  # identical initial weights in every process
    return METHODS[cfg.method](cfg.model, spec if spec is not None else data.spec)


class Trainer:
    def __init__(self, cfg: RunConfig, out: str | Path, *, resume: bool = False) -> None:
        self.cfg, self.out, self.resume = cfg, Path(out), resume
        self.acc = make_accelerator(cfg)
        self.main = self.acc.is_main_process
        self.ckpt_root = self.out / "checkpoints"
        self._check_out_dir()
        self.data = build_data(cfg.data, n_val=cfg.eval.n_val if cfg.eval.select else 0)
        self.method = build_method(cfg, self.data).to(self.acc.device)
        self.method.attach(self.acc)
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
        # per-process randomness (dropout, noise, pools) after the shared init; a resumed run
        # replaces it with the RNG state saved in the checkpoint
        torch.manual_seed(cfg.seed * 1000 + self.acc.process_index)
        if resume:
            self._load_latest()

    # ------------------------------------------------------------------ setup helpers
    def _check_out_dir(self) -> None:
        cfg_path = self.out / "config.yaml"
        has_ckpt = (self.ckpt_root / "latest").is_file()
        if self.resume:
            if not has_ckpt:
                raise XDomainError(
                    f"--resume: '{self.ckpt_root}' has no checkpoint yet; start without --resume"
                )
            if cfg_path.is_file():
                diff = _config_diff(yaml.safe_load(cfg_path.read_text()), to_dict(self.cfg))
                if diff:
                    raise ConfigError(
                        f"--resume: the config differs from '{cfg_path}' at '{diff}'; resume with"
                        " the same recipe and overrides (only train.steps may grow), or start a"
                        " new --out directory"
                    )
        elif has_ckpt:
            raise XDomainError(
                f"'{self.out}' already holds a run; pass --resume to continue it"
                " or choose another --out"
            )
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "samples").mkdir(exist_ok=True)
            cfg_path.write_text(to_yaml(self.cfg))

    def _state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors, rng_meta = ckpt.rng_state()
        optim_meta = {}
        for name, opt in self.optims.items():
            t, meta = ckpt.optimizer_to_flat(name, opt.state_dict())
            tensors.update(t)
            optim_meta[name] = meta
        state = {
            "method": self.cfg.method,
            "config": to_dict(self.cfg),
            "spec": self.method.spec.to_dict(),
            "optimizers": optim_meta,
            "schedulers": {k: s.state_dict() for k, s in self.scheds.items()},
            "rng": rng_meta,
            "best": self.best,
            "xdomain_version": __import__("xdomain").__version__,
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

    def _load_latest(self) -> None:
        path, state, model_t, train_t = ckpt.load_checkpoint(self.ckpt_root)
        ckpt.set_rng_state(train_t, state["rng"])
        self.method.load_state_dict(model_t)
        for name, opt in self.optims.items():
            opt.load_state_dict(ckpt.optimizer_from_flat(name, state["optimizers"][name], train_t))
        for name, s in self.scheds.items():
            s.load_state_dict(state["schedulers"][name])
        if self.acc.scaler is not None and "scaler" in state:
            self.acc.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.best = state.get("best", {})
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
        path.write_text("".join(x + "\n" for x in keep))

    # ------------------------------------------------------------------ the loop
    def log(self, record: dict[str, Any]) -> None:
        if not self.main:
            return
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
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
        t0, step0 = time.perf_counter(), self.step
        try:
            while self.step < t.steps:
                batch = {k: v.to(self.acc.device) for k, v in next(stream).items()}
                with self.acc.autocast():
                    logs = self.method.train_step(batch, self.step)
                check_finite(logs, self.step)
                for s in self.scheds.values():
                    s.step()
                self.step += 1
                bar.update(1)
                if self.step % t.log_every == 0 or self.step == t.steps:
                    rate = (self.step - step0) / max(time.perf_counter() - t0, 1e-9)
                    self.log({"step": self.step, "kind": "train", **logs, "it_per_s": rate})
                    bar.set_postfix({k: f"{v:.3g}" for k, v in list(logs.items())[:4]})
                if self.main and (self.step % t.sample_every == 0 or self.step == t.steps):
                    with torch.random.fork_rng():
                        self.method.visualize(
                            fixed, self.out / "samples" / f"step-{self.step:07d}.png"
                        )
                    self.method.train()
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
            raise NonFiniteLossError(
                f"{e} (last good checkpoint: {self.ckpt_root / 'latest'})"
            ) from None
        finally:
            bar.close()
            if self.main:
                self.tb.close()
        final = {}
        if self.main:
            final = self._final_metrics()
            from xdomain.report import write_report

            write_report(self.out)
        return final

    def _final_metrics(self) -> dict[str, float]:
        """The last eval record (and the best checkpoint's, when one is selected)."""
        records = [json.loads(x) for x in (self.out / "metrics.jsonl").read_text().splitlines()]
        evals = [r for r in records if r.get("kind") == "eval"]
        out = {k: v for k, v in (evals[-1] if evals else {}).items() if k not in ("kind",)}
        if self.best:
            out["best_step"] = self.best["step"]
            out[f"best_{self.best['metric']}"] = self.best["value"]
        (self.out / "final_metrics.json").write_text(json.dumps(out, indent=1))
        return out


def train(cfg: RunConfig, out: str | Path, *, resume: bool = False) -> dict[str, float]:
    """Train a run to `cfg.train.steps`; returns the final metrics."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return Trainer(cfg, out, resume=resume).fit()
