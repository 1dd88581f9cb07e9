"""Trainer behaviour: NaN stops keep the last good checkpoint, schedules, sharding, precision."""

from __future__ import annotations

import math

import helpers
import pytest
import torch

from xdomain import checkpoint as ckpt
from xdomain.config import load_config
from xdomain.datamodule import StepSampler
from xdomain.errors import ConfigError, NonFiniteLossError
from xdomain.optim import lr_lambda
from xdomain.train import Trainer

TOY = [*helpers.TOY, "train.steps=30"]  # 30 steps: checkpoints at 10, 20, 30


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path):
    trainer = Trainer(load_config("discogan-toy", TOY), tmp_path)
    real_step = trainer.method.train_step

    def step(batch, i):
        logs = real_step(batch, i)
        return {**logs, "loss_adv": math.nan} if i == 14 else logs

    trainer.method.train_step = step
    with pytest.raises(NonFiniteLossError, match=r"step 14: loss_adv = nan.*last good checkpoint"):
        trainer.fit()
    _, state, _, _ = ckpt.load_checkpoint(tmp_path)
    assert state["step"] == 10


def test_nan_inside_update_is_caught_before_the_step(tmp_path):
    trainer = Trainer(load_config("discogan-toy", TOY), tmp_path)
    p = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([p], lr=0.1)
    with pytest.raises(NonFiniteLossError):
        trainer.method.update(opt, (p * float("inf")).sum())
    assert torch.equal(p.detach(), torch.ones(2))  # never stepped with a non-finite gradient


def test_lr_schedule_constant_then_linear_to_zero():
    f = lr_lambda(100, 50)
    assert [f(0), f(49), f(50), f(75), f(100)] == [1.0, 1.0, 1.0, 0.5, 0.0]
    assert lr_lambda(100, None)(99) == 1.0


def test_process_slices_make_the_same_global_batch():
    one = StepSampler(50, 8, seed=3, domain=0)
    two = [StepSampler(50, 4, seed=3, domain=0, rank=r, world=2) for r in range(2)]
    for step in (0, 6, 13):  # 13 * 8 crosses epoch boundaries of 50 items
        glob = [k[0] for k in one.keys(step)]
        assert [k[0] for k in two[0].keys(step)] + [k[0] for k in two[1].keys(step)] == glob


def test_sampler_epochs_are_permutations_and_resume_anywhere():
    s = StepSampler(20, 5, seed=0, domain=1)
    first_epoch = [k[0] for step in range(4) for k in s.keys(step)]
    assert sorted(first_epoch) == list(range(20))
    resumed = StepSampler(20, 5, seed=0, domain=1, start_step=7)
    assert next(iter(resumed)) == s.keys(7)


def test_bf16_trains_on_cpu(tmp_path):
    cfg = load_config("discogan-toy", [*TOY, "train.steps=3", "train.precision=bf16"])
    Trainer(cfg, tmp_path / "bf16").fit()
    _, state, _, _ = ckpt.load_checkpoint(tmp_path / "bf16")
    assert state["step"] == 3 and "scaler" not in state


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal")
def test_fp16_needs_a_gpu(tmp_path):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        Trainer(load_config("discogan-toy", [*TOY, "train.precision=fp16"]), tmp_path / "h")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 with a loss scaler needs CUDA")
def test_fp16_trains_on_cuda_and_saves_its_loss_scaler(tmp_path):
    cfg = load_config("discogan-toy", [*TOY, "train.steps=3", "train.precision=fp16"])
    Trainer(cfg, tmp_path / "fp16").fit()
    _, state, model, _ = ckpt.load_checkpoint(tmp_path / "fp16")
    assert state["scaler"]["scale"] > 0 and all(torch.isfinite(v).all() for v in model.values())
