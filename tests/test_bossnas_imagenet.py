"""BossNAS on the ImageNet spaces (MBConv, HyTra): the paper configs build, train on a tiny
ImageFolder, rate the first block against its population centre and pick its best path."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nasbench.algorithms.bossnas_ratings import read_rating_file
from nasbench.config import load_config
from nasbench.engine.checkpoint import load_checkpoint
from nasbench.spaces import build_space

REPO = Path(__file__).resolve().parents[1]


def _tiny_imagefolder(root: Path, classes=2, per_class=9, size=32):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in range(classes):
            d = root / split / f"n0{c}"
            d.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(d / f"{i}.png")


def _train(tmp_path, cfg, extra=()):
    """Two steps = one epoch = block 0 trained, rated and frozen (epochs_per_block 1)."""
    _tiny_imagefolder(tmp_path / "imnet")
    out = tmp_path / "run"
    opts = [f"data.root={tmp_path / 'imnet'}", "data.num_classes=2", "data.image_size=32", "data.val_size=4",
            "data.batch_size=6", "data.eval_batch_size=4", "train.epochs=5", "train.max_steps=2",
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
    assert state["step"] == 2 and len(losses) == 2 and all(-4 <= v <= 4 for v in losses)
    return out, state


MBCONV = REPO / "configs/bossnas/mbconv_imagenet.yaml"


def test_mbconv_paper_config():
    cfg = load_config(MBCONV)
    space = build_space(cfg.space, num_classes=cfg.data.num_classes)
    assert space.name == "bossnas_mbconv" and space.block_sizes == (2, 4, 4, 4, 4)
    assert (space.projector_hidden, space.projection_dim) == (4096, 256)
    a = cfg.algorithm
    assert (a.type, a.epochs_per_block, a.interval, a.update_interval) == ("bossnas", 6, 2, 8)
    assert cfg.train.epochs == 30 and cfg.train.lr == 4.8 and cfg.data.batch_size * a.update_interval == 4096
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
    assert (a.type, a.epochs_per_block, a.interval, a.update_interval) == ("bossnas", 6, 2, 8)
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
    out, state = _train(tmp_path, HYTRA, extra=["space.supernet_width=0.0625", "data.image_size=16"])
    alg = state["algorithm"]
    assert alg["block"] == 1 and len(alg["best_keys"]) == 1
    table = alg["tables"][0]
    from nasbench.spaces.hytra import paths_of_depth
    assert list(table) == ["".join(map(str, p)) for p in paths_of_depth(4)]  # all 51 candidates, reference order
    assert alg["best_keys"][0] == min(table, key=table.get)
    assert read_rating_file(out / "bossnas" / "path_rank_0.yml") == pytest.approx(table)
