"""The BCNetV2 MobileNetV2 ImageNet width config builds and trains a step on a tiny ImageFolder."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from nasbench.config import load_config
from nasbench.engine.checkpoint import load_checkpoint
from nasbench.spaces import build_space

REPO = Path(__file__).resolve().parents[1]
CFG = REPO / "configs/bcnet/mbv2_imagenet_bcnetv2.yaml"


def test_paper_config_space():
    cfg = load_config(CFG)
    space = build_space(cfg.space, num_classes=cfg.data.num_classes)
    assert space.num_genes == 25 and space.bins == 20 and space.min_bins == 6
    assert space.choices(0) == tuple(range(6, 21))
    # 1.5x MobileNetV2 reference, supernet (20 + 6) / 20 wider
    assert space.ref_channels[0] == 48 and space.super_channels[0] == 63
    full = (20,) * 25
    assert space.flops(full) > 600e6  # 1.5x MobileNetV2 at 224x224 is about 0.7 GMACs


def test_one_bf16_step_on_tiny_imagefolder(tmp_path, tiny_imagefolder):
    tiny_imagefolder()
    out = tmp_path / "run"
    opts = [f"data.root={tmp_path / 'imnet'}", "data.num_classes=3", "data.val_size=3", "data.batch_size=6",
            "train.max_steps=1", "train.amp=bf16", "train.warmup_epochs=0", "device=cpu"]
    p = subprocess.run([sys.executable, "tools/train_supernet.py", "--cfg", str(CFG), "--out", str(out),
                        "--opts", *opts], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    state = load_checkpoint(out / "checkpoints/last.pth")
    assert state["step"] == 1
    logged = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    losses = [v for l in logged for k, v in l.items() if k.endswith("loss")]
    assert losses and all(np.isfinite(losses))
    assert state["model"]["net.classifier.weight"].shape[0] == 3
