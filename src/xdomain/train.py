"""The Trainer: one method trained in one run directory, to `train.steps`, resumable exactly.

It knows nothing about any single method: a method is a `Method` whose `train_step` owns its
update order. What it delegates: devices, precision, processes and the optimizer step to
`optim` (Accelerate, the Stepper), the checkpoint files and the training state in them to
`checkpoint`, the run directory's lock and resume rules to `rundir`, the log files to `runlog`.
"""

from __future__ import annotations

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
from xdomain.datamodule import TwoDomainData, build_data, check_layout
from xdomain.errors import ConfigError, NonFiniteLossError, XDomainError, short
from xdomain.fingerprint import compare as compare_fingerprints
from xdomain.fingerprint import data_fingerprint
from xdomain.io import atomic_write_text
from xdomain.methods import METHODS
from xdomain.methods.base import Method
from xdomain.optim import Stepper, all_reduce_mean, check_finite, lost_peer, make_accelerator
from xdomain.optim import schedulers as make_schedulers
from xdomain.outputs import check_run_out
from xdomain.runlog import RunLog
from xdomain.version import __version__


def build_method(cfg: RunConfig, data: TwoDomainData) -> Method:
    """The method for training on `data` (its layout checked first): `config.build_method`."""
    check_layout(cfg.method, METHODS[cfg.method].layout, cfg.data)
    return config_build_method(cfg, data.spec)


class Trainer:
    """Owns one run directory (locked while it lives) and trains one method in it.

    `overwrite` replaces a previous run in `out`; `resume` continues the checkpoint that
    `out/checkpoints/latest` names, refusing a config that differs from the one stored in it.
    Every check runs before anything is written: a refused run changes nothing on disk.
    """

    def __init__(
        self, cfg: RunConfig, out: str | Path, *, resume: bool = False, overwrite: bool = False
    ) -> None:
        self.cfg, self.out = cfg, Path(out)
        if resume and overwrite:
            raise ConfigError("--resume and --overwrite exclude each other; choose one")
        self.acc = make_accelerator(cfg.train)
        self.main = self.acc.is_main_process
        self.ckpt_root = self.out / "checkpoints"
        if resume and not self.ckpt_root.is_dir():  # before the lock creates the folder
            raise XDomainError(
                f"--resume: '{self.out}' has no checkpoint yet; start without --resume"
            )
        check_run_out(self.out)  # not inside another run's files (before the lock file)
        self.lock = rundir.open_run_dir(self.out) if self.main else None
        self.runlog = RunLog(self.out, main=self.main)
        try:
            loaded = self._check_out_dir(resume, overwrite)
            self._build()
            if loaded is not None:
                self._restore(*loaded)
        except BaseException:
            self.close()
            raise

    def _check_out_dir(self, resume: bool, overwrite: bool) -> Any:
        """-> the checkpoint to resume, or None for a fresh run (its header logged)."""
        self.data_fp = data_fingerprint(self.cfg.data)
        loaded = None
        if resume:
            loaded = ckpt.load_checkpoint(self.ckpt_root)
            path, state = loaded[0], loaded[1]
            rundir.check_resumable(
                path, state, self.cfg.method, to_dict(self.cfg), self.cfg.train.steps
            )
            changed = compare_fingerprints(state.get("data"), self.data_fp)
            if changed and self.main:
                tqdm.write(f"warning: --resume: {changed}")
        elif self.main:
            rundir.check_fresh(self.out, overwrite=overwrite)
        if self.main:
            ckpt.clean_stale(self.ckpt_root)
            (self.out / "samples").mkdir(exist_ok=True)
            atomic_write_text(self.out / "config.yaml", to_yaml(self.cfg))
        if not resume:  # the log's first line: what this run trains on
            self.runlog.write(
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

    def _build(self) -> None:
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
        self.scheds = make_schedulers(self.optims, cfg.train)
        self.step = 0
        self.best: dict[str, Any] = {}
        self.run_id = uuid.uuid4().hex  # one id per run: retention deletes only its own
        # per-process randomness (dropout, noise, pools) after the shared init; a resumed run
        # replaces it with the RNG state saved in the checkpoint
        torch.manual_seed(cfg.seed * 1000 + self.acc.process_index)

    def _restore(self, path: Path, state: dict, model_t: dict, train_t: dict) -> None:
        """Continue exactly where checkpoint `path` stopped (weights, optimizers, RNG, logs)."""
        ckpt.load_weights(self.method, model_t, path, self.cfg.method)
        ckpt.restore_training(
            path, state, train_t, self.method, self.optims, self.scheds, self.acc.scaler
        )
        self.step, self.best = state["step"], state["best"]
        self.run_id = state.get("run_id") or self.run_id
        self.runlog.truncate(self.step)
        if self.main:
            tqdm.write(f"resumed from {path} at step {self.step}")

    def close(self) -> None:
        """Release the run directory (also done at the end of `fit`)."""
        if self.lock is not None:
            self.lock.release()

    def save(self, name: str | None = None) -> None:
        if not self.main:
            return
        tensors, state = ckpt.training_state(self.method, self.optims, self.scheds, self.acc.scaler)
        state |= {
            "method": self.cfg.method,
            "config": to_dict(self.cfg),
            "spec": self.method.spec.to_dict(),
            "best": self.best,
            "run_id": self.run_id,
            "data": self.data_fp,
            "xdomain_version": __version__,
        }
        keep = self.cfg.train.keep_last
        sd = self.method.state_dict()
        ckpt.save_checkpoint(
            self.ckpt_root, self.step, sd, tensors, state, keep_last=keep, name=name
        )

    def evaluate(self) -> dict[str, float]:
        from xdomain.evaluate import evaluate

        # fork_rng: evaluation (and a judge trained on first use) must not move the training RNG,
        # or a resumed run would diverge from the uninterrupted one
        with torch.random.fork_rng():
            metrics = evaluate(self.method, self.data, self.cfg.eval) if self.main else {}
        self.acc.wait_for_everyone()
        self.method.train()
        return metrics

    def _maybe_best(self, metrics: dict[str, float]) -> None:
        key, mode = self.cfg.eval.select, self.cfg.eval.select_mode
        if not key or key not in metrics:
            return
        value, old = metrics[key], self.best.get("value")
        if old is None or (mode == "max" and value > old) or (mode == "min" and value < old):
            self.best = {"metric": key, "value": value, "step": self.step}
            self.save(name="best")

    def _every(self, n: int) -> bool:
        return self.step % n == 0 or self.step == self.cfg.train.steps

    def fit(self) -> dict[str, float]:
        t = self.cfg.train
        self.runlog.open_tensorboard(self.step)
        stream = self.data.stream(
            start_step=self.step, rank=self.acc.process_index, world=self.acc.num_processes
        )
        fixed = {k: v.to(self.acc.device) for k, v in self.data.fixed().items()}
        show = t.progress and self.main
        bar = tqdm(total=t.steps, initial=self.step, disable=not show, desc=self.cfg.method,
                   unit="it", dynamic_ncols=True)  # fmt: skip
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
                    # gradients are averaged in the Stepper; buffers (batch-norm statistics)
                    # follow each process's own forward passes and would drift apart
                    buffers = [b for b in self.method.buffers() if b.is_floating_point()]
                    all_reduce_mean(self.acc, buffers)
                for s in self.scheds.values():
                    s.step()
                self.step += 1
                bar.update(1)
                if self._every(t.log_every):
                    rate = (self.step - step0) / max(time.perf_counter() - t0, 1e-9)
                    self.runlog.write(
                        {"step": self.step, "kind": "train", **logs, "it_per_s": rate}
                    )
                    bar.set_postfix({k: f"{v:.3g}" for k, v in list(logs.items())[:4]})
                if self.main and self._every(t.sample_every):
                    sample = self.out / "samples" / f"step-{self.step:07d}.png"
                    with torch.random.fork_rng():
                        self.method.visualize(fixed, sample)
                    self.method.train()
                    self.runlog.image(sample, self.step)
                if self._every(self.cfg.eval.every):
                    metrics = self.evaluate()
                    if self.main:
                        self.runlog.write({"step": self.step, "kind": "eval", **metrics})
                        shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
                        bar.write(f"step {self.step}: {shown}")
                    self._maybe_best(metrics)
                if self._every(t.ckpt_every):
                    self.save()
        except NonFiniteLossError as e:
            kept = ckpt.latest_name(self.ckpt_root)
            where = f"last good checkpoint: {self.ckpt_root / kept}" if kept else (
                "no checkpoint was written before it")  # fmt: skip
            raise NonFiniteLossError(f"{e} ({where})") from None
        except RuntimeError as e:
            if self.acc.num_processes > 1 and lost_peer(e):
                raise self._lost_peer_error(e) from None
            raise
        finally:
            bar.close()
            self.runlog.close()
            if self.step < t.steps:  # stopped early: free the run directory now
                self.close()
        final = {}
        if self.main:
            final = self.runlog.final(self.best, self.data_fp["id"])
            from xdomain.report import write_report

            write_report(self.out, sample_rows=self.method.sample_rows)
        self.close()
        return final

    def _lost_peer_error(self, e: RuntimeError) -> XDomainError:
        kept = ckpt.latest_name(self.ckpt_root)
        where = (
            f"resume from {self.ckpt_root / kept} by restarting every rank with --resume"
            if kept
            else "no checkpoint was written yet: start the run again"
        )
        said = short(str(e).splitlines()[0] if str(e) else type(e).__name__, 120)
        return XDomainError(
            f"rank {self.acc.process_index} of {self.acc.num_processes} lost a peer process at"
            f" step {self.step} (another rank stopped or was killed: {said}); {where}"
        )


def train(
    cfg: RunConfig, out: str | Path, *, resume: bool = False, overwrite: bool = False
) -> dict[str, float]:
    """Train a run to `cfg.train.steps`; returns the final metrics."""
    trainer = Trainer(cfg, out, resume=resume, overwrite=overwrite)
    try:
        return trainer.fit()
    finally:
        trainer.close()
