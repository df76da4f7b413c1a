"""HyTra space (BossNAS) and BossNet-T: reference path lists, depth rule, exact params, MACs, validation.

Reference figures were obtained from changlin31/BossNAS by instantiating its
own ``retraining_hytra/boss_models.py`` (with timm 0.3.2, in a throwaway
directory outside this repo) and counting parameters; the path lists were
read from its ``searching/bossnas/models/utils/hytra_paths.py``
(``restricted_path``). The same throwaway check loaded the reference
networks' random weights into ours (identical state-dict keys and shapes)
and got bit-identical logits, and matched our MACs with its modules counted
the same way. Only numbers are transcribed here, no reference code.
"""
import hashlib
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

import nasbench.spaces  # noqa: F401  (registers the spaces)
from nasbench.errors import ArchError
from nasbench.metrics.flops import count_macs, count_params
from nasbench.ops.hytra import MHSA, ResAtt, ResConv, count_hytra_macs
from nasbench.registry import SPACES
from nasbench.ops.hytra import SqueezeExcite
from nasbench.spaces.hytra import (NAMED_ARCHS, OPS, README_MADDS, HyTraSpace, candidate_paths, next_depth,
                                   paths_of_depth)

REPO = Path(__file__).resolve().parents[1]

#: reference ``restricted_path[depth]``: length, first 6 and last 6 entries, some entries by index
#: (where the first operator's scale changes) and the first 16 hex digits of the sha256 of the whole
#: list written as comma-separated 4-digit paths ("4200,4201,...")
REFERENCE_PATHS = {
    4: (51, ["4200", "4201", "4210", "4211", "4300", "4301"], ["5444", "5542", "5543", "5544", "5554", "5555"],
        {34: "4444", 35: "5420"}, "d21d46535586dae5"),
    3: (99, ["2000", "2001", "2010", "2011", "2100", "2101"], ["4423", "4432", "4433", "4442", "4443", "4444"],
        {63: "3333", 64: "4200"}, "58ffb36be8c5d92d"),
    2: (80, ["0000", "0001", "0010", "0011", "0100", "0101"], ["3232", "3233", "3322", "3323", "3332", "3333"],
        {15: "1111", 16: "2000"}, "d84120bacd5a9703"),
    1: (16, ["0000", "0001", "0010", "0011", "0100", "0101"], ["1010", "1011", "1100", "1101", "1110", "1111"],
        {}, "4fa3882afc66248b"),
}
#: parameters of the reference modules (``sum(p.numel())`` of bossnet_T0 / bossnet_T0_nose / bossnet_T1)
REFERENCE_PARAMS = {"BossNet-T0": 38_415_960, "BossNet-T0-nose": 37_319_080, "BossNet-T1": 38_415_960}
#: our MACs (conv + linear + attention products); the reference modules counted the same way give the same
OUR_MACS = {
    ("BossNet-T0-nose", 224): 3_441_888_768,
    ("BossNet-T0", 224): 3_442_978_304,
    ("BossNet-T0", 288): 5_731_872_256,
    ("BossNet-T1", 224): 7_944_442_880,
    ("BossNet-T1", 256): 10_509_148_160,
}
T0_KEY = "5433-3230-0010-0000_se_s2"


@pytest.fixture(scope="module")
def space():
    return SPACES.build("hytra", num_classes=1000)


def _key(p):
    return "".join(str(o) for o in p)


def _counted(space, arch, size):
    with torch.device("meta"):
        net = space.build(arch)
    return count_hytra_macs(net, (3, size, size)), count_params(net)


# ----------------------------------------------------------------------------- path lists and depth rule
@pytest.mark.parametrize("depth", [4, 3, 2, 1])
def test_candidate_lists_equal_the_reference(depth):
    n, first, last, at, digest = REFERENCE_PATHS[depth]
    paths = [_key(p) for p in paths_of_depth(depth)]
    assert len(paths) == n
    assert paths[:6] == first and paths[-6:] == last
    for i, p in at.items():
        assert paths[i] == p
    assert hashlib.sha256(",".join(paths).encode()).hexdigest()[:16] == digest
    assert len(set(paths)) == n


def test_candidate_paths_by_block_and_scale():
    assert [len(candidate_paths(0))] == [51]
    assert candidate_paths(0, 56) == list(paths_of_depth(4))
    assert [len(candidate_paths(1, s)) for s in (56, 28, 14, 7)] == [51, 99, 80, 16]
    # the rule behind the lists: first op at the input's scale or half of it, then same or half
    for side, paths in ((28, candidate_paths(2, 28)), (7, candidate_paths(3, 7))):
        for p in paths:
            prev = side
            for s in (OPS[o][1] for o in p):
                assert s in (prev, prev // 2) and s >= 7
                prev = s
    with pytest.raises(ArchError, match="in_scale"):
        candidate_paths(1)
    with pytest.raises(ArchError, match="block 0"):
        candidate_paths(0, 28)
    with pytest.raises(ArchError, match="scale"):
        candidate_paths(2, 32)
    with pytest.raises(ArchError, match="block"):
        candidate_paths(4, 7)


def test_next_block_depth_rule(space):
    # ops 0, 1 (at 7) -> depth 1; 2, 3 (at 14) -> 2; 4 (28) -> 3; 5 (56) -> 4
    assert [next_depth((0, 0, 0, o)) for o in range(6)] == [1, 1, 2, 2, 3, 4]
    t0 = NAMED_ARCHS["BossNet-T0"]
    assert space.block_input_scales(t0) == [56, 14, 7, 7]
    assert space.block_depths(t0) == [4, 2, 1, 1]
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = space.sample(rng)
        paths, scales, depths = space.block_paths(a), space.block_input_scales(a), space.block_depths(a)
        assert depths[0] == 4
        for b in range(4):
            assert paths[b] in candidate_paths(b, scales[b])
            assert paths[b] in paths_of_depth(depths[b])
            if b:
                assert depths[b] == next_depth(paths[b - 1])


def test_space_size_equals_chained_candidate_lists(space):
    # number of 4-block chains through the reference lists, with the depth rule
    count = {d: 1 for d in (1, 2, 3, 4)}
    for _ in range(4):
        count = {d: sum(count[next_depth(p)] for p in paths_of_depth(d)) for d in (1, 2, 3, 4)}
    assert count[4] == len(space) == 1_703_991
    first = list(itertools.islice(iter(space), 3))
    assert first[0] == (4, 2, 0, 0) + (0,) * 12 + (1, 2) and all(space.validate(a) == a for a in first)


def test_fits_reference_supernet(space):
    assert space.fits_reference_supernet("BossNet-T0")
    assert not space.fits_reference_supernet("5555-4200-0000-0000")  # block 0 ends at 56
    assert not space.fits_reference_supernet("4444-4444-2000-0000")  # block 1 ends at 28
    assert space.fits_reference_supernet("4444-2222-0000-0000")


# ----------------------------------------------------------------------------- reference figures
@pytest.mark.parametrize("name", sorted(NAMED_ARCHS))
def test_params_equal_the_reference(space, name):
    assert space.params(name) == REFERENCE_PARAMS[name]
    net = space.build(name)
    assert count_params(net) == REFERENCE_PARAMS[name]


def test_macs_match_the_readme(space):
    for (name, size), macs in OUR_MACS.items():
        assert space.flops(name, image_size=size) == macs, (name, size)
        assert round(macs / 1e9, 1) == README_MADDS[(name, size)] / 1e9, (name, size)
    assert space.flops("BossNet-T0") == OUR_MACS[("BossNet-T0", 224)]  # the space's image_size
    assert HyTraSpace(image_size=288).flops("BossNet-T0") == OUR_MACS[("BossNet-T0", 288)]
    # count_macs counts the attention products (MHSA.forward_macs): the same as the space's table;
    # without them T0^ and T1 would round to 5.6B and 7.6B, not the README's 5.7B and 7.9B
    for (name, size) in (("BossNet-T0", 288), ("BossNet-T1", 224)):
        with torch.device("meta"):
            net = space.build(name)
        assert count_macs(net, (3, size, size)) == OUR_MACS[(name, size)]


def test_cost_tables_match_counted_networks(space):
    rng = np.random.default_rng(1)
    archs = [NAMED_ARCHS[n] for n in sorted(NAMED_ARCHS)] + [space.sample(rng) for _ in range(6)]
    archs += [space.decode("4444-4444-4444-4444_nose_s2"),   # empty 56 stage, trailing empty 14 and 7 stages
              space.decode("5555-5555-5555-5555_se_s1"),     # everything at 56, three transitions
              space.decode("4333-2200-0000-0000")]
    for a in archs:
        for size in (224, 160):
            assert (space.flops(a, size), space.params(a)) == _counted(space, a, size), (space.encode(a), size)
    assert space.cost("BossNet-T1") == (OUR_MACS[("BossNet-T1", 224)], REFERENCE_PARAMS["BossNet-T1"])


def test_network_structure(space):
    net = space.build("BossNet-T0")
    sd = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    # reference state-dict layout (so the released checkpoints load)
    assert sd["conv1.weight"] == (64, 3, 7, 7) and sd["fc.weight"] == (1000, 2048)
    assert sd["layer1.0.downsample.1.weight"] == (256, 64, 1, 1)
    assert sd["layer1.0.peg.conv.weight"] == (64, 1, 3, 3) and sd["layer1.0.peg.conv.bias"] == (64,)
    assert sd["layer1.0.se.fc1.weight"] == (16, 256, 1, 1)
    assert sd["layer3.3.proj.1.conv.weight"] == (256, 1, 3, 3)
    assert sd["layer3.3.net.1.to_qkv.weight"] == (768, 256, 1, 1)
    assert sd["layer4.0.shortcut.1.weight"] == (2048, 1024, 1, 1)
    assert sd["layer4.0.net.1.to_qkv.weight"] == (1536, 512, 1, 1)
    assert [len(getattr(net, f"layer{k}")) for k in range(1, 5)] == [1, 1, 5, 9]
    kinds = [type(m).__name__ for k in range(1, 5) for m in getattr(net, f"layer{k}")]
    assert kinds == ["ResConv"] * 5 + ["ResAtt", "ResConv"] + ["ResAtt"] * 3 + ["ResConv"] + ["ResAtt"] * 5
    heads = [m.heads for m in net.modules() if isinstance(m, MHSA)]
    assert heads == [4] + [8] * 8
    # SE and SiLU only with se; no SE in ResAtt
    assert all(m.se is not None for m in net.modules() if isinstance(m, ResConv))
    se_acts = {id(m.act) for m in net.modules() if isinstance(m, SqueezeExcite)}  # SE's own ReLU
    assert len(se_acts) == 7
    assert not any(isinstance(m, torch.nn.ReLU) for m in net.modules() if id(m) not in se_acts)
    nose = space.build("BossNet-T0-nose")
    assert all(m.se is None for m in nose.modules() if isinstance(m, ResConv))
    assert not any(isinstance(m, torch.nn.SiLU) for m in nose.modules())
    # last BNs start at zero (the reference's zero_init_last_bn)
    assert all(float(m.bn3.weight.detach().abs().sum()) == 0 for m in net.modules() if isinstance(m, ResConv))
    assert all(float(m.net[-1].weight.detach().abs().sum()) == 0 for m in net.modules() if isinstance(m, ResAtt))


def test_drop_path_follows_the_layer_index():
    net = HyTraSpace(drop_path_rate=0.1).build("BossNet-T0")
    layers = [m for k in range(1, 5) for m in getattr(net, f"layer{k}")]
    for i, m in enumerate(layers):
        if isinstance(m, ResConv):
            assert (m.drop_path is None) if i == 0 else m.drop_path.p == pytest.approx(0.1 * i / 15)
        else:
            assert not hasattr(m, "drop_path")


# ----------------------------------------------------------------------------- forward
@pytest.mark.parametrize("arch", ["BossNet-T0", "BossNet-T0-nose", "BossNet-T1", "4444-4444-4444-4444_nose_s2"])
def test_forward_backward_tiny_input(arch):
    space = HyTraSpace(num_classes=10, drop_path_rate=0.1)
    torch.manual_seed(0)
    net = space.build(arch)
    x = torch.randn(2, 3, 64, 64)
    net.train()
    out = net(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.sum().backward()
    assert net.conv1.weight.grad is not None
    net.eval()
    with torch.no_grad():
        feats = net.forward_features(torch.randn(1, 3, 64, 64))
    side = 4 if space.validate(arch)[-1] == 1 else 2  # 64 / 16 with last stride 1, 64 / 32 else
    assert feats.shape == (1, 2048, side, side)


def test_attention_is_softmax_over_keys():
    torch.manual_seed(0)
    m = MHSA(64, heads=2, dim_head=32).eval()
    x = torch.randn(1, 64, 3, 3)
    q, k, v = m.to_qkv(x).reshape(1, 6, 32, 9).chunk(3, dim=1)
    want = torch.einsum("bhdj,bhij->bhdi", v, torch.softmax(torch.einsum("bhdi,bhdj->bhij", q, k) / 32 ** 0.5, -1))
    torch.testing.assert_close(m(x), want.reshape(1, 64, 3, 3))
    assert m.matmul_macs(3, 3) == 2 * 81 * 64


# ----------------------------------------------------------------------------- keys and validation
def test_keys_and_names(space):
    t0 = NAMED_ARCHS["BossNet-T0"]
    assert space.encode("BossNet-T0") == T0_KEY
    assert space.encode("bossnet_T0_nose") == "5433-3230-0010-0000_nose_s2"
    assert space.encode("BOSSNET-T1") == "5433-3230-0010-0000_se_s1"
    assert space.decode(T0_KEY) == space.decode("5433-3230-0010-0000") == t0
    assert space.decode("5433-3230-0010-0000_s1") == NAMED_ARCHS["BossNet-T1"]
    assert HyTraSpace(se=False).decode("5433-3230-0010-0000") == NAMED_ARCHS["BossNet-T0-nose"]
    assert space.validate(t0[:16]) == t0
    assert space.validate([list(p) for p in space.block_paths(t0)]) == t0  # the reference's best_paths format
    assert space.stage_encoding(t0) == [[1], [1], [1, 1, 1, 0, 1], [0, 0, 0, 1, 0, 0, 0, 0, 0]]
    assert space.from_stage_encoding([[1], [1], [1, 1, 1, 0, 1], [0, 0, 0, 1, 0, 0, 0, 0, 0]]) == t0
    assert space.from_stage_encoding(space.stage_encoding(t0), se=False) == NAMED_ARCHS["BossNet-T0-nose"]
    rng = np.random.default_rng(2)
    for _ in range(50):
        a = space.sample(rng)
        assert space.decode(space.encode(a)) == a
        assert space.from_stage_encoding(space.stage_encoding(a)) == a


@pytest.mark.parametrize("arch, match", [
    ("5433-3230-0010-000", "cannot parse"),
    ("5433-3230-0010-0000_fast", "unknown flag 'fast'"),
    ("BossNet-T2", "cannot parse"),
    ((5, 4, 3, 3), "has 4 genes"),
    ([(5, 4, 3), (3, 2, 3, 0), (0, 0, 1, 0), (0, 0, 0, 0)], "4 operators each"),
    ("x", "cannot parse"),
    (("a",) * 16, "not a sequence of ints"),
    ("6433-3230-0010-0000", r"layer 0 \(block 0, position 0\) .* is 6"),
    ("3333-3333-3333-3333",
     r"layer 0 \(block 0, position 0\) is op 3 \(ResConv@14\).*stem's 56x56.*4 \(ResConv@28\), 5"),
    ("5433-3430-0010-0000", r"layer 5 \(block 1, position 1\) is op 4 \(ResConv@28\).*layer 4's ResConv@14"),
    ("5420-0000-0000-0002", r"layer 15 \(block 3, position 3\) is op 2 \(ResAtt@14\).*allowed ops: 0 \(ResAtt@7\), 1"),
    ("5533-3230-0010-0000", r"layer 2 \(block 0, position 2\).*ResConv@14.*after layer 1's ResConv@56"),
    (NAMED_ARCHS["BossNet-T0"][:16] + (2, 2), r"gene 16 \(se\)"),
    (NAMED_ARCHS["BossNet-T0"][:16] + (1, 4), r"gene 17 \(last_stride\)"),
])
def test_bad_architectures_are_rejected(space, arch, match):
    with pytest.raises(ArchError, match=match):
        space.validate(arch)


def test_bad_stage_encodings_and_options(space):
    with pytest.raises(ArchError, match="ResAtt exists only"):
        space.from_stage_encoding([[0], [1], [1] * 5, [0] * 9])
    with pytest.raises(ArchError, match="15 layers"):
        space.from_stage_encoding([[1], [1], [1] * 5, [0] * 8])
    with pytest.raises(ArchError, match="layer 1"):
        space.from_stage_encoding([[1], [], [1] * 6, [0] * 9])  # 56 -> 14 skips 28
    with pytest.raises(ArchError, match="variant"):
        HyTraSpace(variant="cifar10")
    with pytest.raises(ArchError, match="last_stride"):
        HyTraSpace(last_stride=4)
    with pytest.raises(ArchError, match="cannot parse"):
        HyTraSpace(archs=["BossNet-T9"])
    # the BossNAS block-wise supernet protocol
    assert space.family == "blockwise" and hasattr(space, "build_supernet")


# ----------------------------------------------------------------------------- sampling
def test_sample_mutate_crossover_stay_legal(space):
    rng = np.random.default_rng(3)
    archs = [space.sample(rng) for _ in range(300)]
    assert all(space.validate(a) == a and a[16:] == (1, 2) for a in archs)
    assert len(set(archs)) > 290
    t1 = NAMED_ARCHS["BossNet-T1"]
    for a in archs[:100]:
        m = space.mutate(a, 0.5, rng)
        assert space.validate(m) == m and m[16:] == a[16:]
        c = space.crossover(t1, a, rng)
        assert space.validate(c) == c and c[16:] == t1[16:]
        assert space.block_paths(c)[0] in (space.block_paths(t1)[0], space.block_paths(a)[0])  # block 0 always fits
    assert space.mutate(t1, 0.0, rng) == t1
    assert space.sample(np.random.default_rng(7)) == space.sample(np.random.default_rng(7))


def test_sample_is_uniform_over_the_space(space):
    # P(first op = 5) = #sequences starting at 56 / #all = completions(1, 56) / 1,703,991
    p5 = HyTraSpace._completions(1, 3) / len(space)
    rng = np.random.default_rng(4)
    n = 4000
    hits = sum(space.sample(rng)[0] == 5 for _ in range(n))
    assert abs(hits / n - p5) < 4 * (p5 * (1 - p5) / n) ** 0.5


# ----------------------------------------------------------------------------- config
def test_bossnet_config():
    from nasbench.config import load_config
    from nasbench.spaces import build_space
    cfg = load_config(REPO / "configs/bossnas/bossnet_imagenet.yaml")
    assert cfg.data.image_size == 224 and cfg.space.type == "hytra"
    space = build_space(cfg.space, num_classes=cfg.data.num_classes)
    assert list(space.archs) == ["BossNet-T0", "BossNet-T0-nose", "BossNet-T1"]
    assert space.input_size == 224 and space.drop_path_rate == 0.1
    r = cfg.retrain
    assert (r.epochs, r.lr, r.weight_decay, r.label_smoothing, r.warmup_epochs, r.schedule) == \
        (300, 0.001, 0.05, 0.1, 5, "cosine")
    assert (r.optimizer, r.mixup, r.cutmix, r.mixup_prob, r.mixup_switch_prob) == ("adamw", 0.8, 1.0, 1.0, 0.5)


def test_bossnet_retrain_step_adamw_mixup(tmp_path, tiny_imagefolder):
    """configs/bossnas/bossnet_imagenet.yaml through tools/retrain.py: BossNet-T0 (at 64 px) takes two
    AdamW steps on mixup/cutmix batches of a tiny ImageFolder and is tested; the checkpoint holds AdamW state."""
    import json
    import subprocess
    import sys
    from nasbench.engine.checkpoint import load_checkpoint
    root = tiny_imagefolder(classes=2, per_class=4, size=64, ext="jpg")
    out = tmp_path / "rt"
    opts = [f"data.root={root}", "data.num_classes=2", "data.val_size=2", "data.image_size=64", "space.image_size=64",
            "data.batch_size=4", "data.eval_batch_size=4", "retrain.max_steps=2", "retrain.warmup_epochs=0",
            "retrain.amp=none", "retrain.ema=null", "device=cpu"]
    p = subprocess.run([sys.executable, "tools/retrain.py", "--cfg", "configs/bossnas/bossnet_imagenet.yaml",
                        "--arch", "BossNet-T0", "--out", str(out), "--opts", *opts], cwd=REPO, capture_output=True,
                       text=True, timeout=300, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [rec["train/loss"] for rec in logged if "train/loss" in rec]
    assert losses and all(np.isfinite(losses))
    res = json.loads((out / "result.json").read_text())
    assert res["steps"] == 2 and res["test_images"] > 0 and 0.0 <= res["top1"] <= 100.0
    opt = load_checkpoint(out / "checkpoints/last.pth")["optimizer"]
    assert all("exp_avg_sq" in st for st in opt["state"].values())  # AdamW moments, not SGD momentum
