"""BossNAS training (algorithm.type bossnas): ensemble target, population centre, EMA schedule,
fair sampling, exact resume across a block boundary, rating files, rank_eval --ratings."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import nasbench.algorithms  # noqa: F401  (registration)
import nasbench.spaces  # noqa: F401
from nasbench.algorithms.bossnas import (BossNAS, GroupedLoader, TwoViewLoader, byol_loss, ema_momentum,
                                         ensemble_target, fair_paths, population_centre)
from nasbench.algorithms.bossnas_ratings import read_block_ratings, read_rating_file
from nasbench.data.cifar import InMemoryImages
from nasbench.data.loader import BatchLoader
from nasbench.engine.context import StepContext
from nasbench.engine.trainer import Trainer
from nasbench.registry import ALGORITHMS, EVALUATORS, SPACES
from nasbench.spaces.nats_sss import CHANNELS

REPO = Path(__file__).resolve().parents[1]
REF_MIRROR = Path("/work/.mirror/changlin31+BossNAS/repo")


def tiny_space(grouping=(1, 1, 1, 1, 1)):
    return SPACES.build("bossnas_nats", variant="cifar10", grouping=list(grouping), projector_channels=8,
                        projector_hidden=16, projection_dim=8)


def tiny_data(n, seed=0, size=8):
    g = torch.Generator().manual_seed(seed)
    return InMemoryImages(torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g),
                          torch.zeros(n, dtype=torch.int64), ["a"])


def make_factory(train, val):
    def make(split, is_train, batch_size=None, seed_offset=0):
        data = train if split == "train" else val
        return BatchLoader(data, int(batch_size or (8 if is_train else 8)), shuffle=is_train, augment=is_train,
                           seed=3 + seed_offset, drop_last=is_train)
    return make


def tiny_setup(grouping=(1, 1, 1, 1, 1), **kw):
    space = tiny_space(grouping)
    torch.manual_seed(0)
    net = space.build_supernet(with_head=False)
    args = dict(epochs_per_block=1, interval=1, update_interval=2, bn_batch_size=8, rating_images=8)
    args.update(kw)
    alg = BossNAS(space, seed=1, **args)
    loader = alg.train_loader(make_factory(tiny_data(32), tiny_data(8, seed=1)))
    return space, net, alg, loader


TRAIN_CFG = {"epochs": 5, "lr": 0.5, "momentum": 0.9, "weight_decay": 1e-6, "warmup_epochs": 1, "min_lr": 0.0,
             "log_interval": 1, "ckpt_interval": 0, "amp": "none", "channels_last": False}


# ---------------------------------------------------------------------------- pieces
def test_ensemble_target_is_mean_of_normalised_paths():
    g = torch.Generator().manual_seed(0)
    z = [torch.randn(5, 7, generator=g) for _ in range(4)]
    t = ensemble_target(z)
    manual = sum(zi / zi.norm(dim=1, keepdim=True) for zi in z) / 4
    assert torch.allclose(t, manual, atol=1e-6)
    # scaling one path's projection does not move the ensemble target (normalised first) ...
    assert torch.allclose(ensemble_target([z[0] * 10] + z[1:]), t, atol=1e-6)
    # ... but moves the population centre (un-normalised mean)
    assert torch.allclose(population_centre(z), torch.stack(z).mean(0))
    assert not torch.allclose(population_centre([z[0] * 10] + z[1:]), population_centre(z))
    p = torch.randn(5, 7, generator=g)
    assert byol_loss(p, p).item() == pytest.approx(-2.0)
    assert byol_loss(p, -p).item() == pytest.approx(2.0)


def test_ema_schedule():
    assert ema_momentum(0, 100, 0.99) == pytest.approx(0.99)
    assert ema_momentum(100, 100, 0.99) == pytest.approx(1.0)
    assert ema_momentum(50, 100, 0.99) == pytest.approx(0.995)
    vals = [ema_momentum(t, 100, 0.99) for t in range(101)]
    assert all(a <= b for a, b in zip(vals, vals[1:]))


def test_fair_sampling():
    space = SPACES.build("bossnas_nats", variant="cifar10", projector_channels=8)
    rng = np.random.default_rng(0)
    seen = set()
    for block in range(3):
        paths = fair_paths(space, block, rng)
        assert len(paths) == 8  # K = number of choices
        sl = space.block_slice(block)
        for j in range(sl.stop - sl.start):  # each layer: a permutation of all 8 widths
            assert sorted(p[j] for p in paths) == list(CHANNELS)
        seen.add(tuple(paths))
    assert len({tuple(p) for p in fair_paths(space, 0, np.random.default_rng(1))}) == 8


def test_two_view_and_grouped_loader():
    base = BatchLoader(tiny_data(32), 8, shuffle=True, augment=True, seed=3)
    tv = TwoViewLoader.like(base)
    v1, v2 = next(iter(tv.epoch(0)))
    assert v1.shape == (8, 3, 8, 8) and not torch.equal(v1, v2)  # independent augmentations
    again = list(tv.epoch(0, start=1))[0]
    assert torch.equal(again[0], list(tv.epoch(0))[1][0])  # deterministic per (epoch, batch)
    grouped = GroupedLoader(tv, 2)
    assert len(grouped) == 2
    groups = list(grouped.epoch(0, start=1))
    assert len(groups) == 1 and torch.equal(groups[0][0][1], list(tv.epoch(0))[2][1])


# ---------------------------------------------------------------------------- training step
def test_step_ema_and_target_follow_the_schedule():
    space, net, alg, loader = tiny_setup()
    alg.setup(net, {**TRAIN_CFG, "warmup_epochs": 0})  # a first step at lr > 0
    ctx = StepContext(model=net, module=net, total_steps=10, steps_per_epoch=2)
    before = {k: v.clone() for k, v in alg.target.state_dict().items()}
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # target starts as online
    batch = next(iter(loader.epoch(0)))
    out = alg.train_step(ctx, batch)
    assert math.isfinite(out["loss"]) and -4 <= out["loss"] <= 4
    m = ema_momentum(1, 10, 0.99)
    assert out["momentum"] == pytest.approx(m)
    online = dict(net.named_parameters())
    moved = 0
    for name, p in alg.target.named_parameters():
        expect = before[name] * m + online[name].detach() * (1 - m)
        assert torch.allclose(p, expect, atol=1e-6), name
        moved += not torch.equal(p, before[name])
    assert moved > 0
    # only block 0 (stem, layer 0, its adapters/heads) was trained
    assert torch.equal(dict(net.named_parameters())["layers.1.conv_a.conv.weight"],
                       before["layers.1.conv_a.conv.weight"])
    assert not torch.equal(dict(net.named_parameters())["layers.0.edges.0.conv.weight"],
                           before["layers.0.edges.0.conv.weight"])


def test_rating_uses_population_centre_of_all_candidates():
    space, net, alg, loader = tiny_setup(grouping=(2, 2, 1))
    alg.setup(net, TRAIN_CFG)
    alg.best_keys, alg.block = ["12", "34"], 2
    table = alg.rate_block(2)
    assert sorted(table) == [str(i) for i in range(8)]
    # independent computation: per-candidate BN recalibration, centre over ALL candidates
    nets = (alg.module, alg.target)
    bn, val = alg._rating_data(torch.device("cpu"))
    bn_feats = [alg._recalibrate_prefix(n, bn) for n in nets]
    feats = [[tuple(alg._prefix(n, x) for x in pair) for pair in val] for n in nets]
    paths = [(w,) for w in CHANNELS]
    proj, pred = [], []
    with torch.no_grad():
        for p in paths:
            alg._recalibrate(nets, bn_feats, 2, p)
            proj.append([(alg.target.project(a, 2, p), alg.target.project(b, 2, p)) for a, b in feats[1]])
            pred.append([(alg.module.predict(a, 2, p), alg.module.predict(b, 2, p)) for a, b in feats[0]])
    for i, p in enumerate(paths):
        loss, n = 0.0, 0
        for j, (q1, q2) in enumerate(pred[i]):
            c1 = population_centre([proj[k][j][0] for k in range(8)])
            c2 = population_centre([proj[k][j][1] for k in range(8)])
            loss += float(byol_loss(q1, c2) + byol_loss(q2, c1)) * len(q1)
            n += len(q1)
        assert table[str(i)] == pytest.approx(loss / n, abs=1e-5)
    # a centre over a subset gives other values (the centre must include every candidate)
    c_sub = population_centre([proj[k][0][1] for k in range(4)])
    c_all = population_centre([proj[k][0][1] for k in range(8)])
    assert not torch.allclose(c_sub, c_all)


# ---------------------------------------------------------------------------- schedule and resume
def _fit(tmp, stop_after=None, resume=False):
    space, net, alg, loader = tiny_setup()
    tr = Trainer(net, alg, loader, TRAIN_CFG, tmp, hooks=[])
    tr.fit(resume=resume, stop_after=stop_after)
    return tr, alg


def test_blockwise_schedule_and_exact_resume_across_block_boundary(tmp_path):
    full, alg = _fit(tmp_path / "full")
    # 5 blocks x 1 epoch x 2 steps: every block rated once, frozen, the greedy arch has one width per block
    assert alg.block == 4 and len(alg.best_keys) == 5 and len(alg.tables) == 5
    assert [h["block"] for h in alg.history] == [0, 1, 2, 3, 4]
    arch = alg.greedy_arch()
    assert all(w in CHANNELS for w in arch)
    # stop exactly at the end of block 1 (step 4, a block boundary), then inside block 2, then resume
    _fit(tmp_path / "cut", stop_after=4)
    ck = torch.load(tmp_path / "cut" / "checkpoints" / "last.pth", weights_only=True)
    assert ck["algorithm"]["block"] == 2 and len(ck["algorithm"]["best_keys"]) == 2
    assert ck["algorithm"]["optimizer"] is None  # a new optimizer for the new block
    _fit(tmp_path / "cut", stop_after=5, resume=True)
    ck = torch.load(tmp_path / "cut" / "checkpoints" / "last.pth", weights_only=True)
    assert ck["algorithm"]["optimizer"] is not None  # mid-block: LARS state saved
    resumed, alg2 = _fit(tmp_path / "cut", resume=True)
    a = full.module.state_dict()
    b = resumed.module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    ta, tb = alg.target.state_dict(), alg2.target.state_dict()
    assert all(torch.equal(ta[k], tb[k]) for k in ta)
    assert alg.tables == alg2.tables and alg.best_keys == alg2.best_keys
    # reports: JSON + reference-format rating files with quoted keys
    alg2.write_reports(tmp_path / "cut")
    tables = read_block_ratings(tmp_path / "cut" / "bossnas", 5)
    assert tables == alg2.tables
    text = (tmp_path / "cut" / "bossnas" / "path_rank_0.yml").read_text()
    assert text.startswith("- !!python/tuple\n  - '")
    rec = json.loads((tmp_path / "cut" / "bossnas" / "ratings.json").read_text())
    assert rec["arch"] == space_encode(arch) and rec["rating"] == pytest.approx(
        sum(alg2.tables[b][k] + 4 for b, k in enumerate(alg2.best_keys)))
    # the registered evaluator: greedy search result and ratings
    ev = EVALUATORS.get("bossnas_rating").from_config({}, type("C", (), {"algorithm": alg2})())
    best, extras = ev.best_architecture()
    assert best == arch and extras["rating"] == pytest.approx(rec["rating"])
    assert ev.evaluate([arch])[0]["score"] == pytest.approx(-rec["rating"])


def space_encode(arch):
    return ":".join(str(a) for a in arch)


def test_schedule_must_fit_blocks(tmp_path):
    from nasbench.errors import ConfigError
    space, net, alg, loader = tiny_setup(epochs_per_block=2)  # 2 x 5 blocks > 5 epochs
    with pytest.warns(UserWarning, match="never be rated"):
        Trainer(net, alg, loader, {**TRAIN_CFG, "max_steps": 1}, tmp_path / "a").fit()
    space, net, alg, loader = tiny_setup(epochs_per_block=None)  # 5 epochs / 5 blocks = 1
    Trainer(net, alg, loader, {**TRAIN_CFG, "max_steps": 1}, tmp_path / "b").fit()
    assert alg.epochs_per_block == 1
    space, net, alg, loader = tiny_setup(epochs_per_block=None)
    with pytest.raises(ConfigError, match="multiple of the 5 blocks"):
        Trainer(net, alg, loader, {**TRAIN_CFG, "epochs": 7}, tmp_path / "c").fit()


def test_registered():
    assert ALGORITHMS.get("bossnas") is BossNAS
    from nasbench.gpu_check import missing_algorithms
    assert "bossnas" not in missing_algorithms()


# ---------------------------------------------------------------------------- rank_eval --ratings
def _ref_files(tmp_path):
    if not REF_MIRROR.exists():
        pytest.skip("the reference repository changlin31/BossNAS is not mirrored locally")
    d = tmp_path / "ref"
    d.mkdir()
    for b in range(3):
        text = subprocess.run(["git", f"--git-dir={REF_MIRROR}", "show", f"HEAD:ranking_nats/path_rank/path_rank_{b}.yml"],
                              capture_output=True, text=True, check=True).stdout
        (d / f"path_rank_{b}.yml").write_text(text)
    return d


def test_rank_eval_ratings_on_reference_files(tmp_path, bench_root):
    d = _ref_files(tmp_path)
    assert len(read_rating_file(d / "path_rank_0.yml")) == 64
    out = tmp_path / "rank"
    cmd = [sys.executable, str(REPO / "tools" / "rank_eval.py"), "--cfg", str(REPO / "configs/bossnas/nats_cifar10_cpu.yaml"),
           "--ratings", str(d), "--out", str(out), "--opts", f"benchmark.root={bench_root}"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    res = json.loads((out / "rank.json").read_text())
    assert res["num_archs"] == 32768
    # METHODS.md 3.4: the shipped ratings give tau -0.534, rho -0.734, r -0.718 on the loss itself
    assert res["kendall_tau"] == pytest.approx(0.534, abs=0.002)
    assert res["spearman"] == pytest.approx(0.734, abs=0.002)
    assert res["pearson"] == pytest.approx(0.718, abs=0.002)
    # without --ratings the tool still wants --ckpt
    r = subprocess.run(cmd[:4] + ["--out", str(out)], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and "--ckpt" in r.stderr


def test_rank_eval_ratings_is_refused_by_algorithms_without_rating_files(tmp_path, bench_root):
    """--ratings goes through the algorithm protocol: a method with no rating files refuses
    with one error line and exit 2, writing nothing."""
    out = tmp_path / "rank"
    cmd = [sys.executable, str(REPO / "tools" / "rank_eval.py"), "--cfg", str(REPO / "configs/bcnet/cbm_resnet_cpu.yaml"),
           "--ratings", str(tmp_path), "--out", str(out), "--opts", f"benchmark.root={bench_root}"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2, r.stderr
    assert "writes no rating files" in r.stderr and "--ckpt" in r.stderr
    assert not out.exists()


# ---------------------------------------------------------------------------- DDP (2 processes, gloo)
def _ddp_worker(rank, port, out_dir):
    import os

    import torch.distributed as tdist

    from nasbench.engine.dist import DistInfo, cleanup
    torch.set_num_threads(1)
    tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        space = tiny_space()
        torch.manual_seed(0)
        net = space.build_supernet(with_head=False)
        alg = BossNAS(space, seed=1, epochs_per_block=1, interval=1, update_interval=2, bn_batch_size=8,
                      rating_images=8)
        train, val = tiny_data(32), tiny_data(8, seed=1)

        def make(split, is_train, batch_size=None, seed_offset=0):
            return BatchLoader(train if split == "train" else val, int(batch_size or 8), shuffle=is_train,
                               augment=is_train, seed=3, drop_last=is_train, rank=rank if is_train else 0,
                               world_size=2 if is_train else 1)
        loader = alg.train_loader(make)
        tr = Trainer(net, alg, loader, {**TRAIN_CFG, "warmup_epochs": 0}, os.path.join(out_dir, f"r{rank}"),
                     dist=DistInfo(rank, 2, rank, torch.device("cpu")))
        first = next(iter(loader.epoch(0)))[0][0]
        tr.fit(stop_after=1)
        torch.save({"params": {k: v.detach().clone() for k, v in tr.module.named_parameters()},
                    "target": {k: v.clone() for k, v in alg.target.named_parameters()},
                    "first": first}, os.path.join(out_dir, f"rank{rank}.pt"))
        del tr
    finally:
        cleanup()


def test_ddp_two_ranks_hold_identical_online_weights(tmp_path):
    import socket

    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert not torch.equal(r0["first"], r1["first"])  # the ranks saw different images
    torch.manual_seed(0)
    init = dict(tiny_space().build_supernet(with_head=False).named_parameters())
    moved = 0
    for k in r0["params"]:
        assert torch.equal(r0["params"][k], r1["params"][k]), k
        assert torch.equal(r0["target"][k], r1["target"][k]), k
        moved += not torch.equal(r0["params"][k], init[k])
    assert moved > 0
