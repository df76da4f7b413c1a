"""BossNAS on the ImageNet spaces (MBConv, HyTra): the paper configs build, train on a tiny
ImageFolder, rate the first block against its population centre and pick its best path."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_imagefolder

from nasbench.algorithms.bossnas_ratings import read_rating_file
from nasbench.config import load_config
from nasbench.engine.checkpoint import load_checkpoint
from nasbench.spaces import build_space

REPO = Path(__file__).resolve().parents[1]


def _train(tmp_path, cfg, extra=(), steps=2):
    """Two steps = one epoch = block 0 trained, rated and frozen (epochs_per_block 1); a third
    step trains block 1 on the frozen block 0."""
    make_tiny_imagefolder(tmp_path / "imnet", classes=2, per_class=9, size=32)
    out = tmp_path / "run"
    opts = [f"data.root={tmp_path / 'imnet'}", "data.num_classes=2", "data.image_size=32", "data.val_size=4",
            "data.batch_size=6", "data.eval_batch_size=4", "train.epochs=5", f"train.max_steps={steps}",
            "train.amp=none", "train.warmup_epochs=0", "train.log_interval=1", "device=cpu",
            "algorithm.epochs_per_block=1", "algorithm.interval=1", "algorithm.update_interval=1",
            "algorithm.bn_batch_size=4", "algorithm.rating_images=4",
            "space.projector_hidden=32", "space.projection_dim=16", *extra]
    p = subprocess.run([sys.executable, "tools/train_supernet.py", "--cfg", str(cfg), "--out", str(out),
                        "--opts", *opts], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    state = load_checkpoint(out / "checkpoints/last.pth")
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [v for rec in logged for k, v in rec.items() if k == "train/loss"]
    assert state["step"] == steps and len(losses) == steps and all(-4 <= v <= 4 for v in losses)
    return out, state


MBCONV = REPO / "configs/bossnas/mbconv_imagenet.yaml"


def test_mbconv_paper_config():
    cfg = load_config(MBCONV)
    space = build_space(cfg.space, num_classes=cfg.data.num_classes)
    assert space.name == "bossnas_mbconv" and space.block_sizes == (2, 4, 4, 4, 4)
    assert (space.projector_hidden, space.projection_dim) == (4096, 256)
    a = cfg.algorithm
    assert (a.type, a.epochs_per_block, a.interval, a.update_interval, a.views) == ("bossnas", 6, 2, 8, "byol")
    assert cfg.train.epochs == 30 and cfg.train.lr == 4.8 and cfg.data.batch_size * a.update_interval == 4096
    rng = np.random.default_rng(0)
    for b in range(5):  # fair sampling: K = 4 paths, every layer a permutation of its 4 operators
        paths = space.sample_block_paths(b, (), rng)
        assert len(paths) == 4 and all(sorted(col) == [0, 1, 2, 3] for col in zip(*paths))
    sup = space.build_supernet()
    assert [p[-1].out_features for p in sup.projectors] == [256] * 5
    assert [p[2].in_features for p in sup.projectors] == [24, 40, 80, 112, 192]  # the block's own width


def test_mbconv_trains_rates_and_picks_block0_on_tiny_imagefolder(tmp_path):
    out, state = _train(tmp_path, MBCONV)
    alg = state["algorithm"]
    assert alg["block"] == 1 and len(alg["best_keys"]) == 1
    table = alg["tables"][0]
    assert sorted(table) == [f"{i}{j}" for i in range(4) for j in range(4)]  # all 16 paths of block 0
    assert alg["best_keys"][0] == min(table, key=table.get)
    assert all(-4 <= v <= 4 for v in table.values())
    assert read_rating_file(out / "bossnas" / "path_rank_0.yml") == pytest.approx(table)
    # the projector/predictor of block 0 are part of the checkpointed supernet
    assert state["model"]["projectors.0.2.weight"].shape == (32, 24)


HYTRA = REPO / "configs/bossnas/hytra_imagenet.yaml"


def test_hytra_paper_config_and_block_protocol():
    cfg = load_config(HYTRA)
    space = build_space(cfg.space, num_classes=cfg.data.num_classes)
    a = cfg.algorithm
    assert (a.type, a.epochs_per_block, a.interval, a.update_interval, a.views) == ("bossnas", 6, 2, 8, "byol")
    assert cfg.train.epochs == 24 and space.num_blocks == 4 and space.train_paths == 4
    # candidates: 51 for block 0; later blocks follow the scale the chosen previous path ends at
    assert len(space.block_candidates(0)) == 51
    assert [len(space.block_candidates(1, [k])) for k in ("5555", "5444", "5433", "4310")] == [51, 99, 80, 16]
    rng = np.random.default_rng(0)
    paths = space.sample_block_paths(2, ["5433", "3230"], rng)
    assert len(paths) == len(set(paths)) == 4 and set(paths) <= set(space.block_candidates(2, ["5433", "3230"]))
    t0 = space.arch_from_block_keys(["5433", "3230", "0010", "0000"])
    assert t0 == space.decode("BossNet-T0") and space.block_keys(t0) == ("5433", "3230", "0010", "0000")


def test_hytra_supernet_runs_every_candidate_path():
    import torch
    space = build_space({"type": "hytra", "supernet_width": 0.0625, "projector_hidden": 8, "projection_dim": 4})
    sup = space.build_supernet().eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        for prev in ("5555", "5444", "5433", "4310"):  # block 1 after inputs at 56, 28, 14, 7
            h = sup.forward_block(x, 0, prev)
            for k in space.block_candidates(1, [prev]):
                assert sup.predict(h, 1, k).shape == (2, 4)
        t0 = space.decode("BossNet-T0")
        sup.set_active(t0)
        assert sup(x).shape == (2, 128, 1, 1)  # 2048 x 1/16 channels at the 7-scale (1x1 for 32 px)


def test_hytra_trains_rates_and_picks_block0_on_tiny_imagefolder(tmp_path):
    out, state = _train(tmp_path, HYTRA, extra=["space.supernet_width=0.0625", "data.image_size=16"], steps=3)
    alg = state["algorithm"]
    assert alg["block"] == 1 and len(alg["best_keys"]) == 1
    assert alg["optimizer"] is not None  # step 3 trained block 1 (its candidates follow block 0's best path)
    table = alg["tables"][0]
    from nasbench.spaces.hytra import paths_of_depth
    assert list(table) == ["".join(map(str, p)) for p in paths_of_depth(4)]  # all 51 candidates, reference order
    assert alg["best_keys"][0] == min(table, key=table.get)
    assert read_rating_file(out / "bossnas" / "path_rank_0.yml") == pytest.approx(table)


# ---------------------------------------------------------------------------- BYOL views
def test_byol_view_probabilities_are_asymmetric():
    import torch

    from nasbench.algorithms.bossnas_views import draw_byol_params
    n = 4000
    for view, blur, sol in ((1, 0.1, 0.0), (2, 1.0, 0.2)):
        ps = draw_byol_params(torch.Generator().manual_seed(view), n, 64, 48, view)
        assert np.mean([p["blur"] is not None for p in ps]) == pytest.approx(blur, abs=0.02)
        assert np.mean([p["solarize"] for p in ps]) == pytest.approx(sol, abs=0.02)
        assert np.mean(["jitter" in p for p in ps]) == pytest.approx(0.8, abs=0.02)
        assert np.mean([p["gray"] for p in ps]) == pytest.approx(0.2, abs=0.02)
        assert np.mean([p["flip"] for p in ps]) == pytest.approx(0.5, abs=0.03)
        areas = [p["crop"][2] * p["crop"][3] / (64 * 48) for p in ps]
        assert 0.08 * 0.9 <= min(areas) and max(areas) <= 1.0
        assert all(0.1 <= p["blur"] <= 2.0 for p in ps if p["blur"] is not None)


def test_byol_ops():
    import torch

    from nasbench.algorithms.bossnas_views import apply_byol
    g = torch.Generator().manual_seed(0)
    img = torch.rand(3, 16, 16, generator=g)
    plain = {"crop": (0, 0, 16, 16), "flip": False, "gray": False, "blur": None, "solarize": False}
    assert torch.allclose(apply_byol(img, plain, (16, 16)), img, atol=1e-5)  # full crop at the same size
    assert torch.allclose(apply_byol(img, {**plain, "flip": True}, (16, 16)), img.flip(-1), atol=1e-5)
    sol = apply_byol(img, {**plain, "solarize": True}, (16, 16))
    assert torch.allclose(sol, torch.where(img >= 0.5, 1 - img, img), atol=1e-5)
    gray = apply_byol(img, {**plain, "gray": True}, (16, 16))
    assert torch.allclose(gray[0], gray[1]) and torch.allclose(gray[1], gray[2])
    blurred = apply_byol(img, {**plain, "blur": 2.0}, (16, 16))
    assert blurred.std() < img.std() / 2  # a sigma-2 blur removes most of white noise's variance
    crop = apply_byol(img, {**plain, "crop": (4, 4, 8, 8)}, (16, 16))
    assert crop.shape == (3, 16, 16)


def test_byol_two_view_loader_is_seeded_and_shard_independent():
    import torch

    from nasbench.algorithms.bossnas import TwoViewLoader
    from nasbench.data.cifar import InMemoryImages
    from nasbench.data.loader import BatchLoader
    g = torch.Generator().manual_seed(0)
    data = InMemoryImages(torch.randint(0, 256, (16, 3, 24, 24), dtype=torch.uint8, generator=g),
                          torch.zeros(16, dtype=torch.int64), ["a"])
    one = TwoViewLoader.like(BatchLoader(data, 8, True, True, seed=3), views="byol")
    v1, v2 = next(iter(one.epoch(0)))
    assert v1.shape == (8, 3, 24, 24) and not torch.allclose(v1, v2)
    again = next(iter(one.epoch(0)))
    assert torch.equal(again[0], v1) and torch.equal(again[1], v2)  # exact resume
    shards = [next(iter(TwoViewLoader.like(BatchLoader(data, 8, True, True, seed=3, rank=r, world_size=2),
                                           views="byol").epoch(0))) for r in (0, 1)]
    assert torch.allclose(torch.cat([s[0] for s in shards]), v1, atol=1e-5)
    assert torch.allclose(torch.cat([s[1] for s in shards]), v2, atol=1e-5)
