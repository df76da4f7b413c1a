"""The standalone NAS-Bench-201 network (``space.build`` of ``nas_bench_201`` / ``nas_bench_201_darts``):
its structure and forward pass, its MACs/params against the analytic cost model and the benchmark's records
(all 15,625 cells), the retraining tool on it, and the paper-size DARTS configs on the NB201 space."""
import json
import random

import pytest
import torch

from nasbench.config import load_config
from nasbench.errors import ArchError
from nasbench.metrics.flops import count_macs, count_params
from nasbench.ops.nas_bench_201 import InferCell, ResBlock, Zero
from nasbench.spaces import build_space
from nasbench.spaces.nas_bench_201 import EDGES, OPS, NASBench201Space
from nasbench.supernets.nas_bench_201 import NB201SearchNetwork

from test_pipeline import REPO, run_tool

BEST = "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"
PAPER = ["nb201_darts.yaml", "nb201_darts2.yaml", "nb201_clr.yaml", "nb201_pc_clr.yaml"]


def _sample(n, seed=0):
    rng = random.Random(seed)
    return [tuple(rng.randrange(len(OPS)) for _ in EDGES) for _ in range(n)]


def test_build_is_the_tiny_network():
    """Stem conv3x3+BN, 5 cells at 16, ResBlock 16->32, 5 cells at 32, ResBlock 32->64, 5 cells at 64,
    BN+ReLU, pooling, linear; the cell's 6 edges carry the arch's ops with affine BN; logits on 16 and 32 px."""
    space = NASBench201Space(num_classes=120, input_size=16)
    net = space.build(BEST)
    kinds = [type(m).__name__ for m in net.cells]
    assert kinds == ["InferCell"] * 5 + ["ResBlock"] + ["InferCell"] * 5 + ["ResBlock"] + ["InferCell"] * 5
    assert net.stem[0].out_channels == 16 and net.stem[0].kernel_size == (3, 3) and net.stem[0].bias is None
    assert (net.cells[5].conv_a[1].in_channels, net.cells[5].conv_a[1].out_channels) == (16, 32)
    assert net.cells[5].conv_a[1].stride == (2, 2) and net.cells[11].conv_b[1].out_channels == 64
    assert (net.classifier.in_features, net.classifier.out_features) == (64, 120)
    cell = net.cells[0]
    assert [type(op).__name__ for op in cell.ops] == ["ReLUConvBN", "ReLUConvBN", "ReLUConvBN", "ReLUConvBN",
                                                      "Zero", "ReLUConvBN"]
    assert cell.inputs == [[0], [0, 1], [0, 1, 2]]
    assert all(m.affine and m.track_running_stats for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert [cell.ops[i][1].kernel_size for i in (0, 1, 2)] == [(1, 1), (1, 1), (3, 3)]
    for side in (16, 32):
        assert net(torch.randn(2, 3, side, side)).shape == (2, 120)
    assert space.build(BEST, num_classes=10).classifier.out_features == 10
    d = build_space({"type": "nas_bench_201_darts", "init_channels": 8, "eval_cells_per_stage": 2})
    small = d.build(BEST)
    assert len(small.cells) == 8 and small.classifier.in_features == 32 and small.classifier.out_features == 10
    with pytest.raises(ArchError):
        space.build((0, 1, 2, 3, 4, 5))


def test_infer_cell_equals_the_one_hot_search_cell():
    """With one-hot alphas the supernet's cell is the discrete cell (same conv weights, BN in eval mode at init):
    none = zeros, skip = identity, pool excludes padding, all edges stride 1 (also those from node 0)."""
    torch.manual_seed(0)
    x = torch.randn(2, 8, 8, 8)
    for arch in _sample(20, seed=1) + [(0,) * 6, (1,) * 6, (4, 0, 0, 0, 0, 0)]:
        sup = NB201SearchNetwork(C=8, N=1).eval().layers[0]
        nodes = [[(OPS[arch[g]], j) for g, (to, j) in enumerate(EDGES) if to == i] for i in (1, 2, 3)]
        cell = InferCell(nodes, 8).eval()
        for e, g in enumerate(arch):
            src = sup.edges[e].ops[g]
            if OPS[g].startswith("nor_conv"):
                cell.ops[e][1].weight.data.copy_(src[1].weight.data)
        w = torch.zeros(6, 5)
        w[torch.arange(6), torch.tensor(arch)] = 1.0
        want = sup(x, w, torch.ones(6))
        assert torch.allclose(cell(x), want, atol=1e-5), arch
    zero = InferCell([[("none", 0)], [("none", 0), ("none", 1)], [("none", 0), ("none", 1), ("none", 2)]], 4)
    assert all(isinstance(op, Zero) for op in zero.ops) and not zero(torch.randn(1, 4, 4, 4)).any()
    r = ResBlock(4, 8)
    assert r(torch.randn(1, 4, 8, 8)).shape == (1, 8, 4, 4)


@pytest.mark.parametrize("input_size,num_classes,C,N", [(32, 100, 16, 5), (16, 120, 16, 5), (32, 10, 8, 2)])
def test_analytic_cost_equals_the_built_network(input_size, num_classes, C, N):
    """space.flops/params (analytic, summed per edge op) = conv+linear MACs and all parameters of the built
    network, for 20 random cells plus the all-none and all-3x3 cells."""
    space = NASBench201Space(num_classes=num_classes, input_size=input_size, init_channels=C,
                             eval_cells_per_stage=N)
    for arch in _sample(20) + [(0,) * 6, (3,) * 6]:
        with torch.device("meta"):
            net = space.build(arch)
        assert count_macs(net, (3, input_size, input_size)) == space.flops(arch), arch
        assert count_params(net) == space.params(arch) == space.cost(arch)[1], arch


def test_cost_against_all_benchmark_records(bench_of):
    """The shipped records (flops_m = MACs / 1e6 to 2 decimals, params_m = params / 1e6 to 3 decimals) are the
    cost of the NB201 network at 32 px with 100 classes (the CIFAR-100 network), not at ImageNet16-120's
    16 px / 120 classes: 15,475 of 15,625 cells match it exactly at that precision; each of the other 150 is
    off by exactly one conv edge in both MACs and params (1x1: 3.93 M MACs / 28,000 params; 3x3: 35.39 M / 243,040)."""
    bench = bench_of("nas_bench_201/imagenet16_120")
    c100 = NASBench201Space(num_classes=100, input_size=32)
    i16 = NASBench201Space(num_classes=120, input_size=16)
    assert (i16.flops(BEST), i16.params(BEST)) == (22_597_120, 650_536)
    assert (c100.flops(BEST), c100.params(BEST)) == (90_364_160, 649_236)  # recorded: 90.36 M, 0.649 M
    conv = {}
    for op in ("nor_conv_1x1", "nor_conv_3x3"):
        a = (OPS.index(op),) + (0,) * 5
        conv[op] = (c100.flops(a) - c100.flops((0,) * 6), c100.params(a) - c100.params((0,) * 6))
    assert conv == {"nor_conv_1x1": (3_932_160, 28_000), "nor_conv_3x3": (35_389_440, 243_040)}
    exact, off, i16_exact = 0, [], 0
    for key in bench:
        r = bench.query(key)
        f, p = c100.flops(key), c100.params(key)
        if round(f / 1e6, 2) == r["flops_m"] and round(p / 1e6, 3) == r["params_m"]:
            exact += 1
        else:
            off.append((f, p, r))
        i16_exact += round(i16.flops(key) / 1e6, 2) == r["flops_m"] or round(i16.params(key) / 1e6, 3) == r["params_m"]
    assert exact == 15_475 and len(off) == 150 and i16_exact == 0
    for f, p, r in off:
        df, dp = r["flops"] - f, r["params"] - p
        assert any(abs(abs(df) - cf) <= 5_000 and abs(abs(dp) - cp) <= 500 and (df > 0) == (dp > 0)
                   for cf, cp in conv.values()), (df, dp)


def test_retrain_tool_on_a_found_cell(data_root, bench_root, tmp_path):
    """tools/retrain.py with the CPU retraining config trains the standalone network of an arch string
    (shrunk here: C=4, 1 cell per stage, 3 steps) and reports its params/MACs and benchmark entry."""
    cfg = REPO / "configs/darts/nb201_retrain_cpu.yaml"
    opts = [f"data.root={data_root}", f"benchmark.root={bench_root}", "data.train_size=64", "data.val_size=32",
            "data.test_size=32", "data.batch_size=32", "data.eval_batch_size=32", "retrain.max_steps=3",
            "retrain.log_interval=1", "space.init_channels=4", "space.eval_cells_per_stage=1"]
    run_tool("retrain.py", "--cfg", cfg, "--arch", BEST, "--out", tmp_path / "r", "--opts", *opts)
    res = json.loads((tmp_path / "r/result.json").read_text())
    space = build_space({"type": "nas_bench_201_darts", "init_channels": 4, "eval_cells_per_stage": 1})
    assert res["arch"] == BEST and res["steps"] == 3 and 0 <= res["top1"] <= 100
    assert (res["params"], res["flops"]) == (space.params(BEST), space.flops(BEST))
    with torch.device("meta"):
        assert count_params(space.build(BEST)) == res["params"]
    assert res["benchmark"]["name"] == "nas_bench_201/imagenet16_120" and res["benchmark"]["rank"] >= 1


def test_paper_and_retrain_configs_load():
    """The paper-size configs carry NB201's DARTS search setting (AutoDL-Projects DARTS-V1/V2 + DARTS.config)
    and differ from each other only in unrolled / CLR / partial channels."""
    cfgs = {n: load_config(REPO / "configs/darts" / n) for n in PAPER}
    for n, c in cfgs.items():
        assert c.space.type == "nas_bench_201_darts" and c.space.search_channels == 16
        assert c.space.cells_per_stage == 5 and c.data.val_size == 25_000 and c.data.batch_size == 64
        assert c.data.name == "cifar10" and c.train.epochs == 50 and c.train.lr == 0.025 and c.train.min_lr == 0.001
        assert c.train.weight_decay == 5e-4 and c.train.nesterov and c.train.clip_grad == 5.0
        assert c.algorithm.type == "bnas_v2" and c.algorithm.arch_weight_decay == 1e-3
        assert c.retrain.epochs == 200 and c.retrain.lr == 0.1 and c.retrain.weight_decay == 5e-4
    a = {n: (c.algorithm.unrolled, c.algorithm.confidence, c.space.partial, c.algorithm.arch_lr)
         for n, c in cfgs.items()}
    assert a == {"nb201_darts.yaml": (False, False, 1, 3e-4), "nb201_darts2.yaml": (True, False, 1, 3e-4),
                 "nb201_clr.yaml": (False, True, 1, 3e-4), "nb201_pc_clr.yaml": (False, True, 4, 6e-4)}
    r = load_config(REPO / "configs/darts/nb201_retrain_cpu.yaml")
    assert (r.space.init_channels, r.space.eval_cells_per_stage, r.retrain.epochs) == (16, 5, 3)
    space = build_space(r.space, num_classes=10)
    assert (space.flops(BEST), space.params(BEST)) == (90_358_400, 643_386)
