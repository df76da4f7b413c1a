"""Engine tests: checkpoints, exact resume, LR schedule, AMP, EMA, logs, 2-process DDP.

Everything runs on CPU with tiny models and in-memory data (a fake loader with
the ``len(loader)`` / ``loader.epoch(e, start)`` interface of nasbench.data).
"""

import json
import math
import os
import socket
import warnings

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn

from nasbench.algorithms.base import Algorithm, SupervisedMixin
from nasbench.algorithms.supervised import StandardAlgorithm, evaluate_accuracy
from nasbench.engine import (
    RunLogger, Trainer, all_gather_object, all_reduce_mean, broadcast_object,
    build_optimizer, build_scheduler, cleanup, get_rng_state, init_distributed,
    load_checkpoint, save_checkpoint, set_deterministic, set_rng_state,
)
from nasbench.engine.dist import resolve_device
from nasbench.errors import CheckpointError, ConfigError, NasbenchError


# --------------------------------------------------------------------------- fixtures
class FakeLoader:
    """In-memory loader: deterministic per (epoch, batch), contiguous shard per rank."""

    def __init__(self, n=64, batch=8, rank=0, world_size=1, seed=0, classes=5, size=4):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 3, size, size, generator=g)
        self.y = torch.randint(0, classes, (n,), generator=g)
        self.n, self.batch, self.rank, self.world_size = n, batch, rank, world_size

    def __len__(self):
        return self.n // self.batch

    def epoch(self, e, start=0):
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(1000 + e))
        for i in range(start, len(self)):
            idx = perm[i * self.batch:(i + 1) * self.batch].chunk(self.world_size)[self.rank]
            yield self.x[idx].clone(), self.y[idx].clone()


def small_cnn(dropout=0.2):
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(8, 5))


def small_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.Tanh(), nn.Linear(16, 5))


def make_cfg(**kw):
    cfg = dict(epochs=3, max_steps=None, lr=0.1, min_lr=0.001, warmup_epochs=0.5, warmup_lr=0.01,
               momentum=0.9, nesterov=True, weight_decay=5e-4, no_wd_bn=True, label_smoothing=0.1,
               clip_grad=None, ema=None, amp="none", sync_bn=False, log_interval=3,
               ckpt_interval=0)
    cfg.update(kw)
    return {"train": cfg}


class NoisyAlgorithm(StandardAlgorithm):
    """Stateful algorithm: input noise from its own generator (saved in state_dict)."""

    def __init__(self):
        self.gen = torch.Generator().manual_seed(7)

    def train_step(self, ctx, batch):
        images, targets = batch
        images = images + 0.1 * torch.randn(images.shape, generator=self.gen)
        return super().train_step(ctx, (images, targets))

    def state_dict(self):
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, d):
        self.gen.set_state(d["gen"])


class TwoPassAlgorithm(SupervisedMixin, Algorithm):
    """Two forward/backward passes per step (like BCNet), each on half the batch."""

    def __init__(self, use_no_sync=True):
        self.use_no_sync = use_no_sync

    def train_step(self, ctx, batch):
        images, targets = batch
        h = images.shape[0] // 2
        sync = ctx.no_sync() if self.use_no_sync else _null()
        with sync:
            with ctx.autocast():
                l1 = self.criterion(ctx.model(images[:h]), targets[:h]) * 0.5
            ctx.backward(l1, last=False)
        with ctx.autocast():
            l2 = self.criterion(ctx.model(images[h:]), targets[h:]) * 0.5
        ctx.backward(l2, last=True)
        return {"loss": float((l1 + l2).detach())}

    def state_dict(self):
        return {}

    def load_state_dict(self, d):
        pass


def _null():
    import contextlib
    return contextlib.nullcontext()


def run(tmp, cfg, model_seed=0, algo=None, loader=None, model_fn=small_cnn, **fit_kw):
    set_deterministic(model_seed)
    model = model_fn()
    tr = Trainer(model, algo or StandardAlgorithm(), loader or FakeLoader(), cfg, tmp,
                 extra_state={"cfg": cfg})
    tr.fit(**fit_kw)
    return tr


def assert_same_state(a, b):
    sa, sb = a.module.state_dict(), b.module.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    oa, ob = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert oa["param_groups"] == ob["param_groups"]
    for i in oa["state"]:
        for k, v in oa["state"][i].items():
            assert torch.equal(v, ob["state"][i][k]) if torch.is_tensor(v) else v == ob["state"][i][k]


# --------------------------------------------------------------------------- checkpoints
def test_atomic_save_and_corrupt_checkpoint(tmp_path):
    path = tmp_path / "ck" / "last.pth"
    state = {"model": small_cnn().state_dict(), "step": 3}
    assert save_checkpoint(state, path) == path
    assert sorted(os.listdir(path.parent)) == ["last.pth"]  # no temp files left
    loaded = load_checkpoint(path)
    assert loaded["step"] == 3 and "nasbench_version" in loaded
    save_checkpoint({**state, "step": 4}, path)  # overwrite in place
    assert load_checkpoint(path)["step"] == 4
    assert sorted(os.listdir(path.parent)) == ["last.pth"]

    data = path.read_bytes()
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as e:
        load_checkpoint(bad)
    assert str(bad) in str(e.value)
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=str(bad)):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pth")
    foreign = tmp_path / "foreign.pth"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a nasbench checkpoint"):
        load_checkpoint(foreign)

    class Boom:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")
    with pytest.raises(RuntimeError):
        save_checkpoint({"x": Boom()}, path)
    assert sorted(os.listdir(path.parent)) == ["last.pth"]  # failed save: no temp, old file kept
    assert load_checkpoint(path)["step"] == 4


def test_rng_state_roundtrip():
    import random

    import numpy as np
    set_deterministic(1, deterministic=False)
    s = get_rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(s)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


# --------------------------------------------------------------------------- resume
def test_resume_is_bit_identical(tmp_path):
    cfg = make_cfg(ema=0.9, ckpt_interval=5)
    full = run(tmp_path / "full", cfg, algo=NoisyAlgorithm())
    assert full.step == 24 and full.epoch == 3

    part = run(tmp_path / "part", cfg, algo=NoisyAlgorithm(), stop_after=11)  # mid-epoch 1
    assert (part.step, part.epoch, part.batch_idx) == (11, 1, 3)
    torch.manual_seed(12345)  # disturb the global RNG: resume must restore it (dropout)
    resumed = run(tmp_path / "part", cfg, model_seed=99, algo=NoisyAlgorithm(), resume=True)
    assert resumed.step == 24
    assert_same_state(full, resumed)
    for k, v in full.ema.state_dict().items():
        assert torch.equal(v, resumed.ema.state_dict()[k]), k
    ck = load_checkpoint(tmp_path / "part" / "checkpoints" / "last.pth")
    assert ck["step"] == 24 and ck["extra_state"]["cfg"]["train"]["lr"] == 0.1


def test_resume_after_crash_from_periodic_checkpoint(tmp_path):
    cfg = make_cfg(ckpt_interval=3)
    full = run(tmp_path / "full", cfg)

    class Crash(StandardAlgorithm):
        def train_step(self, ctx, batch):
            if ctx.step == 10:
                raise KeyboardInterrupt("simulated kill")
            return super().train_step(ctx, batch)

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "crash", cfg, algo=Crash())
    ck = load_checkpoint(tmp_path / "crash" / "checkpoints" / "last.pth")
    assert (ck["step"], ck["epoch"], ck["batch_idx"]) == (9, 1, 1)
    resumed = run(tmp_path / "crash", cfg, model_seed=5, resume=True)
    assert_same_state(full, resumed)


def test_mixup_cutmix_adamw_resume_exactly(tmp_path):
    """DeiT / BossNet-T retraining: AdamW plus timm mixup/cutmix soft targets; a run killed mid-way
    and resumed equals the uninterrupted one (the mixing draws come from numpy's saved generator)."""
    cfg = make_cfg(optimizer="adamw", lr=1e-3, weight_decay=0.05, mixup=0.8, cutmix=1.0, mixup_prob=1.0,
                   mixup_switch_prob=0.5, label_smoothing=0.1, ckpt_interval=3)
    np.random.seed(0)
    full = run(tmp_path / "full", cfg, algo=StandardAlgorithm(num_classes=5))
    assert isinstance(full.optimizer, torch.optim.AdamW)

    class Crash(StandardAlgorithm):
        def train_step(self, ctx, batch):
            if ctx.step == 10:
                raise KeyboardInterrupt("simulated kill")
            return super().train_step(ctx, batch)

    np.random.seed(0)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "crash", cfg, algo=Crash(num_classes=5))
    np.random.seed(77)  # disturb numpy's generator: resume must restore it
    resumed = run(tmp_path / "crash", cfg, model_seed=5, algo=StandardAlgorithm(num_classes=5), resume=True)
    assert_same_state(full, resumed)
    with pytest.raises(ConfigError, match="num_classes"):
        StandardAlgorithm().setup(small_cnn(), {"mixup": 0.8})


def test_mixup_batch_is_mixed_with_soft_targets():
    """One batch through the retraining step with mixup only: the images the network sees are
    lam x + (1 - lam) x.flip(0), and the loss is the cross-entropy against the soft targets
    lam onehot(y) + (1 - lam) onehot(y.flip(0)) (smoothed)."""
    from nasbench.engine.context import StepContext
    seen = {}

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3 * 4 * 4, 5)

        def forward(self, x):
            seen["x"] = x.clone()
            return self.fc(x.flatten(1))

    net = Probe()
    algo = StandardAlgorithm(num_classes=5)
    algo.setup(net, {"mixup": 0.8, "cutmix": 0.0, "mixup_prob": 1.0, "label_smoothing": 0.1})
    x, y = torch.randn(6, 3, 4, 4), torch.tensor([0, 1, 2, 3, 4, 0])
    np.random.seed(3)
    out = algo.train_step(StepContext(model=net, module=net, optimizer=None), (x.clone(), y))
    d = x - x.flip(0)
    lam = float(((seen["x"] - x.flip(0)) * d).sum() / (d * d).sum())  # least squares: one lambda per batch
    assert 0.0 < lam < 1.0 and abs(lam - 0.5) > 1e-3  # mixed (and not the pair average by accident)
    assert torch.allclose(seen["x"], lam * x + (1 - lam) * x.flip(0), atol=1e-5)
    off, on = 0.1 / 5, 1 - 0.1 + 0.1 / 5
    onehot = lambda t: torch.full((6, 5), off).scatter_(1, t[:, None], on)  # noqa: E731
    soft = lam * onehot(y) + (1 - lam) * onehot(y.flip(0))
    logits = net.fc(seen["x"].flatten(1))
    expect = -(soft * torch.log_softmax(logits, 1)).sum(1).mean()
    assert float(out["loss"]) == pytest.approx(float(expect.detach()), rel=1e-5)


def test_resume_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        run(tmp_path, make_cfg(max_steps=2), resume=True)
    tr = run(tmp_path / "auto", make_cfg(max_steps=2), resume="auto")  # starts fresh
    assert tr.step == 2


# --------------------------------------------------------------------------- optimizer / schedule
def test_optimizer_groups():
    model = small_cnn()
    model[0].weight.requires_grad_(False)
    opt = build_optimizer(model, make_cfg())
    wd = {g["weight_decay"]: g["params"] for g in opt.param_groups}
    assert len(wd[5e-4]) == 1 and wd[5e-4][0] is model[6].weight
    assert len(wd[0.0]) == 4  # conv bias, bn weight/bias, fc bias
    assert all(p is not model[0].weight for g in opt.param_groups for p in g["params"])
    assert opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9


def test_scheduler_warmup_cosine():
    lr, min_lr, wlr = 0.1, 0.001, 0.01
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=lr)
    cfg = make_cfg(epochs=5, warmup_epochs=1, lr=lr, min_lr=min_lr, warmup_lr=wlr)
    sched = build_scheduler(opt, cfg, steps_per_epoch=10)  # T = 50, W = 10
    assert opt.param_groups[0]["lr"] == pytest.approx(wlr)
    expect = {0: wlr, 5: wlr + 5 * (lr - wlr) / 10, 10: lr, 30: (lr + min_lr) / 2,
              40: min_lr + (lr - min_lr) * (1 + math.cos(math.pi * 0.75)) / 2, 50: min_lr,
              60: min_lr}
    for t, v in expect.items():
        sched.step_update(num_updates=t)
        assert opt.param_groups[0]["lr"] == pytest.approx(v, rel=1e-9), t
    # max_steps caps the length; the schedule is checkpointable
    opt2 = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=lr)
    s2 = build_scheduler(opt2, make_cfg(epochs=100, max_steps=20, warmup_epochs=0, lr=lr,
                                        min_lr=0.0), steps_per_epoch=10)
    s2.step_update(num_updates=10)
    assert opt2.param_groups[0]["lr"] == pytest.approx(lr / 2)
    s3 = build_scheduler(torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=1.0), make_cfg(), 10)
    s3.load_state_dict(s2.state_dict())
    assert s3.t_initial == 20


def test_scheduler_step_decays_per_epoch_like_darts_imagenet():
    """schedule: step = StepLR(decay_epochs, decay_rate) counted in iterations: constant within an
    epoch, x0.97 at each epoch boundary (DARTS train_imagenet.py), after an optional warm-up."""
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    sched = build_scheduler(opt, make_cfg(epochs=250, schedule="step", decay_epochs=1.0, decay_rate=0.97, lr=0.1, warmup_epochs=0),
                            steps_per_epoch=10)
    for t, v in {0: 0.1, 9: 0.1, 10: 0.097, 19: 0.097, 20: 0.1 * 0.97 ** 2, 2490: 0.1 * 0.97 ** 249}.items():
        sched.step_update(num_updates=t)
        assert opt.param_groups[0]["lr"] == pytest.approx(v, rel=1e-9), t
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.2)
    sched = build_scheduler(opt, make_cfg(epochs=10, schedule="step", decay_epochs=2.0, decay_rate=0.5, lr=0.2,
                                          warmup_epochs=1, warmup_lr=0.0), steps_per_epoch=10)
    for t, v in {5: 0.1, 10: 0.2, 29: 0.2, 30: 0.1, 50: 0.05}.items():
        sched.step_update(num_updates=t)
        assert opt.param_groups[0]["lr"] == pytest.approx(v, rel=1e-9), t


def test_trainer_applies_schedule(tmp_path):
    cfg = make_cfg(epochs=1, warmup_epochs=0.5, warmup_lr=0.01, log_interval=1)
    tr = run(tmp_path, cfg)
    rows = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    # row i is logged after step i+1, showing the LR for the next step
    assert rows[0]["train/lr"] == pytest.approx(0.01 + (0.1 - 0.01) / 4)
    assert rows[3]["train/lr"] == pytest.approx(0.1)
    assert rows[-1]["train/lr"] == pytest.approx(0.001)
    assert tr.step == 8


# --------------------------------------------------------------------------- amp / ema / logs
def test_bf16_autocast_cpu(tmp_path):
    tr = run(tmp_path, make_cfg(amp="bf16", max_steps=3, log_interval=1, clip_grad=1.0))
    assert tr.amp_dtype == torch.bfloat16 and not tr.scaler.is_enabled()
    rows = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(math.isfinite(r["train/loss"]) for r in rows)
    assert all(r["train/grad_norm"] is not None for r in rows)
    with pytest.warns(UserWarning, match="fp16 needs CUDA"):
        tr = run(tmp_path / "fp16", make_cfg(amp="fp16", max_steps=1))
    assert tr.amp_dtype == torch.bfloat16


def _losses(tmp):
    return [json.loads(l)["train/loss"] for l in (tmp / "log.jsonl").read_text().splitlines()]


def test_channels_last_same_loss_as_contiguous(tmp_path):
    cfg = make_cfg(max_steps=4, log_interval=1, label_smoothing=0.0)
    ref = run(tmp_path / "nchw", cfg, loader=FakeLoader(size=8))
    cl = run(tmp_path / "nhwc", {"train": {**cfg["train"], "channels_last": True}}, loader=FakeLoader(size=8))
    assert not ref.channels_last and cl.channels_last
    assert cl.module[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not ref.module[0].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(_losses(tmp_path / "nhwc"), _losses(tmp_path / "nchw"), rtol=1e-5, atol=1e-5)
    for a, b in zip(cl.module.state_dict().values(), ref.module.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def _bcnet_run(tmp, **train_kw):
    """Two BCNet steps (left + right windows) of the CBM MobileNet supernet on 32x32 images."""
    from nasbench.algorithms import BCNet
    from nasbench.spaces import ChannelBenchMacroSpace
    space = ChannelBenchMacroSpace("mobilenet", min_bins=1)
    cfg = make_cfg(max_steps=2, log_interval=1, label_smoothing=0.0, warmup_epochs=0, lr=0.05, **train_kw)
    return run(tmp, cfg, algo=BCNet(space, seed=3), loader=FakeLoader(n=8, batch=4, size=32, classes=10),
               model_fn=space.build_supernet)


def test_supernet_channels_last_and_bf16_cpu(tmp_path):
    """BCNet's sliced (left and right) windows: channels_last gives contiguous's losses and
    weights; bf16 autocast (+ channels_last) runs with finite losses close to fp32's."""
    ref = _bcnet_run(tmp_path / "fp32")
    cl = _bcnet_run(tmp_path / "cl", channels_last=True)
    bf = _bcnet_run(tmp_path / "bf16", amp="bf16", channels_last=True)
    assert bf.amp_dtype == torch.bfloat16 and bf.channels_last
    l_ref, l_cl, l_bf = (_losses(tmp_path / d) for d in ("fp32", "cl", "bf16"))
    assert len(l_ref) == 2 and all(math.isfinite(v) for v in l_ref + l_bf)
    torch.testing.assert_close(l_cl, l_ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(l_bf, l_ref, rtol=0, atol=0.05)  # bf16: ~3 significant digits
    for a, b in zip(cl.module.state_dict().values(), ref.module.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
    assert all(torch.isfinite(p).all() for p in bf.module.parameters())


def test_ema_tracks(tmp_path):
    decay = 0.8
    seen = []

    from nasbench.engine import HookBase

    class Record(HookBase):
        def after_step(self, trainer, metrics):
            seen.append({k: v.detach().clone() for k, v in trainer.module.state_dict().items()})

    set_deterministic(0)
    tr = Trainer(small_cnn(), StandardAlgorithm(), FakeLoader(), make_cfg(ema=decay, max_steps=6),
                 tmp_path, hooks=[Record()])
    tr.fit()
    ema = {k: v.clone().float() for k, v in seen[0].items()}  # first update copies
    for s in seen[1:]:
        for k in ema:
            ema[k] = decay * ema[k] + (1 - decay) * s[k].float()
    got = tr.ema.module.state_dict()
    for k in ema:
        if got[k].is_floating_point():
            torch.testing.assert_close(got[k], ema[k], rtol=1e-5, atol=1e-6)
    w = tr.module[6].weight
    assert not torch.equal(tr.ema.module[6].weight, w)


def test_log_jsonl_and_logger(tmp_path):
    run(tmp_path, make_cfg(max_steps=7, log_interval=3))
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    rows = [json.loads(l) for l in lines]
    assert [r["step"] for r in rows] == [3, 6, 7]
    for r in rows:
        assert {"train/loss", "train/lr", "train/images_per_s", "train/top1"} <= set(r)
    assert "training done" in (tmp_path / "log.txt").read_text()
    lg = RunLogger(tmp_path / "other", rank=0, use_tensorboard=False)
    lg.log(1, {"a": float("nan"), "b": torch.tensor(2.0), "skip": torch.ones(3)}, prefix="")
    lg.close()
    row = json.loads((tmp_path / "other" / "log.jsonl").read_text())
    assert row["a"] is None and row["b"] == 2.0 and "skip" not in row
    lg1 = RunLogger(tmp_path / "rank1", rank=1)
    lg1.log(1, {"a": 1.0})
    lg1.close()
    assert not (tmp_path / "rank1").exists()


def test_nan_loss_raises(tmp_path):
    class NanAlgo(StandardAlgorithm):
        def train_step(self, ctx, batch):
            super().train_step(ctx, batch)
            return {"loss": float("nan")}
    with pytest.raises(FloatingPointError, match="step 1"):
        run(tmp_path, make_cfg(max_steps=3, log_interval=1), algo=NanAlgo())


def test_single_process_dist_helpers():
    info = init_distributed(device="cpu")
    assert (info.rank, info.world_size, info.distributed) == (0, 1, False)
    t = torch.ones(3)
    assert all_reduce_mean(t) is t
    assert broadcast_object({"a": 1}) == {"a": 1} and all_gather_object(5) == [5]
    cleanup()
    if not torch.cuda.is_available():
        with pytest.raises(NasbenchError, match="CUDA is not available"):
            resolve_device("cuda")


def test_slurm_env_without_master_addr(monkeypatch):
    import shutil

    from nasbench.engine import dist as D
    if shutil.which("scontrol"):
        pytest.skip("real slurm present")
    env = {"SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_LOCALID": "0",
           "SLURM_JOB_NODELIST": "nodeA,nodeB", "SLURM_JOB_ID": "1234", "PATH": "/nonexistent"}
    monkeypatch.setattr(os, "environ", dict(env))
    assert D._read_env() == (1, 2, 0)
    assert os.environ["MASTER_ADDR"] == "nodeA" and os.environ["MASTER_PORT"] == "29734"
    assert os.environ["RANK"] == "1" and os.environ["WORLD_SIZE"] == "2"
    monkeypatch.setattr(os, "environ", {**env, "SLURM_JOB_NODELIST": "node[1-4]"})
    with pytest.raises(NasbenchError, match="MASTER_ADDR"):
        D._read_env()
    monkeypatch.setattr(os, "environ", {**env, "SLURM_NTASKS": "1"})
    assert D._read_env() is None  # one slurm task = single process


def test_evaluate_accuracy():
    model = small_mlp()
    loader = FakeLoader()
    out = evaluate_accuracy(model, loader, "cpu")
    assert out["n"] == 64 and 0 <= out["top1"] <= 100 and out["loss"] > 0
    pairs = list(loader.epoch(0))
    assert evaluate_accuracy(model, pairs, "cpu")["top1"] == pytest.approx(out["top1"])
    assert model.training


# --------------------------------------------------------------------------- DDP
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DDP_CFG = make_cfg(epochs=2, warmup_epochs=0.25, label_smoothing=0.0, log_interval=4,
                   weight_decay=1e-3)


def _ddp_worker(rank, port, out_dir):
    # the slurm code path of init_distributed (torchrun's is exercised by scripts/dist_train.sh)
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        os.environ.pop(k, None)
    os.environ.update(SLURM_PROCID=str(rank), SLURM_NTASKS="2", SLURM_LOCALID=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    info = init_distributed(device="cpu")
    assert info.world_size == 2 and info.rank == rank
    try:
        _ddp_work(rank, info, out_dir)  # its trainers are garbage by the time cleanup() runs
    finally:
        cleanup()


def _ddp_work(rank, info, out_dir):
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
    assert broadcast_object(f"r{rank}") == "r0"
    assert all_gather_object(rank) == [0, 1]
    assert all_reduce_mean(torch.tensor([float(rank)])).item() == 0.5
    results = {}
    for name, algo in [("standard", StandardAlgorithm()), ("twopass", TwoPassAlgorithm()),
                       ("twopass_nosync_missing", TwoPassAlgorithm(use_no_sync=False))]:
        set_deterministic(0)
        tr = Trainer(small_mlp(), algo, FakeLoader(rank=rank, world_size=2), DDP_CFG,
                     os.path.join(out_dir, name), dist=info)
        calls = []

        def counting_allreduce(state, bucket):
            calls.append(1)
            return allreduce_hook(state, bucket)
        tr.model.register_comm_hook(None, counting_allreduce)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            tr.fit()
        results[name] = {k: v.clone() for k, v in tr.module.state_dict().items()}
        results[name + "_allreduces"] = len(calls)
        results[name + "_warned"] = any("no_sync" in str(x.message) for x in w)
    # interrupted + resumed DDP run ends where the uninterrupted one did
    for seed, kw in ((0, {"stop_after": 5}), (rank + 3, {"resume": True})):
        set_deterministic(seed)  # resumed run: other init, resume must load everything
        tr = Trainer(small_mlp(), StandardAlgorithm(), FakeLoader(rank=rank, world_size=2),
                     DDP_CFG, os.path.join(out_dir, "resumed"), dist=info)
        tr.fit(**kw)
    results["standard_resumed"] = {k: v.clone() for k, v in tr.module.state_dict().items()}
    results["eval"] = evaluate_accuracy(tr.module, FakeLoader(rank=rank, world_size=2), "cpu")
    if rank == 0:
        torch.save(results, os.path.join(out_dir, "ddp.pt"))


def test_ddp_two_process_matches_single(tmp_path):
    for attempt in range(3):  # the free port can be taken between probe and bind: retry
        try:
            mp.spawn(_ddp_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
            break
        except mp.ProcessRaisedException as e:
            if "address already in use" not in str(e).lower() or attempt == 2:
                raise
    ddp = torch.load(tmp_path / "ddp.pt")
    for name, algo in [("standard", StandardAlgorithm()), ("twopass", TwoPassAlgorithm()),
                       ("twopass_nosync_missing", TwoPassAlgorithm(use_no_sync=False))]:
        single = run(tmp_path / f"single_{name}", DDP_CFG, algo=algo, model_fn=small_mlp)
        assert single.step == 16
        ref = single.module.state_dict()
        init = (set_deterministic(0), small_mlp().state_dict())[1]
        for k, v in ref.items():
            assert not torch.equal(v, init[k])  # it trained
            diff = (ddp[name][k] - v).abs().max().item()
            assert diff <= 1e-6, f"{name} {k}: DDP vs single process differ by {diff:.2e}"
    for k, v in ddp["standard"].items():
        assert torch.equal(ddp["standard_resumed"][k], v), k
    # ctx.no_sync(): one all-reduce per step (the model fits one bucket); without it, two
    assert ddp["standard_allreduces"] == ddp["twopass_allreduces"] == 16
    assert ddp["twopass_nosync_missing_allreduces"] == 32
    assert ddp["twopass_nosync_missing_warned"] and not ddp["twopass_warned"]
    ev = evaluate_accuracy(single.module, FakeLoader(), "cpu")
    assert ddp["eval"]["n"] == 64
    assert ddp["eval"]["top1"] == pytest.approx(ev["top1"])
    assert ddp["eval"]["loss"] == pytest.approx(ev["loss"], abs=1e-6)
