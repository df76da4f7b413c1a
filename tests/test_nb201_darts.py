"""NAS-Bench-201 cells as a DARTS supernet: the network, one step of each CPU config's algorithm,
and the search reporting the found cell's benchmark accuracy (plus the per-epoch trajectory tool)."""
import json

import pytest
import torch
import torch.nn.functional as F

from nasbench.algorithms import build_algorithm
from nasbench.config import load_config
from nasbench.engine.context import StepContext
from nasbench.engine.optim import build_optimizer
from nasbench.errors import ConfigError
from nasbench.spaces import build_space
from nasbench.spaces.nas_bench_201 import OPS
from nasbench.supernets.nas_bench_201 import PARAMETER_FREE, NB201SearchNetwork

from test_pipeline import REPO, run_tool

CONFIGS = ["nb201_darts_cpu.yaml", "nb201_darts2_cpu.yaml", "nb201_clr_cpu.yaml", "nb201_pc_clr_cpu.yaml"]
#: the paper-size configs (5 cells per stage at C=16) take the same step
PAPER = ["nb201_darts.yaml", "nb201_darts2.yaml", "nb201_clr.yaml", "nb201_pc_clr.yaml"]


def test_supernet_skeleton_forward_and_genotype():
    """NB201 skeleton: stem C, N cells per stage at C/2C/4C, two residual reduction blocks, classifier 4C;
    alpha [6, 5] shared by all cells; the found cell is the per-edge argmax including 'none'."""
    torch.manual_seed(0)
    net = NB201SearchNetwork(C=8, N=2, num_classes=10)
    kinds = [type(m).__name__ for m in net.layers]
    assert kinds == ["_SearchCell"] * 2 + ["ResBlock"] + ["_SearchCell"] * 2 + ["ResBlock"] + ["_SearchCell"] * 2
    assert net.classifier.in_features == 32 and net.stem[0].out_channels == 8
    assert net(torch.randn(3, 3, 32, 32)).shape == (3, 10)
    assert [tuple(p.shape) for p in net.arch_parameters()] == [(6, 5)]
    with torch.no_grad():
        net.alpha.zero_()
        net.alpha[:, OPS.index("none")] = 1.0          # 'none' can win (the reference's rule here)
        net.alpha[2, OPS.index("nor_conv_3x3")] = 2.0
        net.alpha[5, OPS.index("skip_connect")] = 3.0
    assert net.genotype() == (0, 0, 3, 0, 0, 1)
    space = build_space({"type": "nas_bench_201_darts", "search_channels": 8, "cells_per_stage": 2})
    assert space.encode(net.genotype()) == "|none~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|"
    shares = net.parameter_free_shares()
    assert shares["pfree_argmax"] == pytest.approx(5 / 6)
    w = F.softmax(net.alpha.detach(), -1)
    assert shares["pfree"] == pytest.approx(float(w[:, list(PARAMETER_FREE)].sum(-1).mean()))
    assert [OPS[i] for i in PARAMETER_FREE] == ["none", "skip_connect", "avg_pool_3x3"]
    arch, extras = net.found_arch()
    assert arch == net.genotype() and len(extras["weights"]) == 6


def test_cell_computes_the_nb201_dag():
    """With one-hot weights a search cell is the discrete cell: node_i = sum_j op_(i<-j)(node_j), output node 3."""
    torch.manual_seed(0)
    net = NB201SearchNetwork(C=4, N=1).eval()
    cell = net.layers[0]
    x = torch.randn(2, 4, 8, 8)
    w = torch.zeros(6, 5)
    arch = (1, 4, 0, 1, 0, 1)  # 1<-0 skip, 2<-0 pool, 2<-1 none, 3<-0 skip, 3<-1 none, 3<-2 skip
    w[torch.arange(6), torch.tensor(arch)] = 1.0
    pool = torch.nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    # node1 = x; node2 = pool(x) + none(node1); node3 = x + none(node1) + node2
    assert torch.allclose(cell(x, w, torch.ones(6)), x + pool(x), atol=1e-6)


def test_partial_channels_and_edge_normalisation():
    torch.manual_seed(0)
    net = NB201SearchNetwork(C=8, N=1, partial=4)
    assert [tuple(p.shape) for p in net.arch_parameters()] == [(6, 5), (6,)]
    with torch.no_grad():
        net.beta.copy_(torch.tensor([5.0, 1.0, 2.0, 0.0, 0.0, 3.0]))
    ew = net.edge_weights().detach()
    assert ew[0] == 1.0  # node 1 has a single incoming edge
    assert ew[1:3].sum() == pytest.approx(1) and ew[3:].sum() == pytest.approx(1)
    assert ew[2] > ew[1] and ew[5] > ew[3]
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    with pytest.raises(ConfigError, match="divide"):
        build_space({"type": "nas_bench_201_darts", "search_channels": 6, "partial": 4})


class _ArchLoader:
    def __init__(self):
        g = torch.Generator().manual_seed(1)
        self.x, self.y = torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g)

    def __len__(self):
        return 2

    def epoch(self, e, start=0):
        for _ in range(start, 2):
            yield self.x, self.y


@pytest.mark.parametrize("name", CONFIGS + PAPER)
def test_one_step_of_each_cpu_config(name):
    """Each CPU config's algorithm (first order, second order, CLR, PC + CLR) takes one architecture step and
    one weight step on the NB201 supernet: alphas move, the weights get gradients, the shares are logged,
    and the epoch's argmax cell lands in the history."""
    cfg = load_config(REPO / "configs/darts" / name)
    space = build_space(cfg.space, num_classes=10)
    torch.manual_seed(0)
    net = space.build_supernet()
    alg = build_algorithm(cfg.algorithm, space)
    alg.arch_loader = _ArchLoader()
    opt = build_optimizer(net, cfg.train, fused=False)
    ctx = StepContext(model=net, module=net, optimizer=opt, step=1, epoch=0, total_steps=4, steps_per_epoch=2)
    alg.setup(net, cfg.train)
    a0 = [a.detach().clone() for a in net.arch_parameters()]
    g = torch.Generator().manual_seed(0)
    out = alg.train_step(ctx, (torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g)))
    assert all(not torch.equal(a, b) for a, b in zip(a0, net.arch_parameters()))
    assert net.stem[0].weight.grad is not None and torch.isfinite(out["loss"])
    assert {"pfree", "pfree_argmax", "arch_loss", "arch_lr"} <= set(out)
    conf = 1.0 if not cfg.algorithm.confidence else (1 / 2) ** 2  # epoch 0 of 2
    if cfg.algorithm.unrolled:
        assert out["arch_lr"] == pytest.approx(cfg.algorithm.arch_lr) and out["arch_confidence"] == conf
    else:
        assert out["arch_lr"] == pytest.approx(cfg.algorithm.arch_lr * conf)
    assert len(net.arch_parameters()) == (2 if cfg.space.partial > 1 else 1)
    (h,) = alg.arch_history  # step 1 is the last of epoch 0
    assert h["epoch"] == 0 and h["step"] == 2 and tuple(h["arch"]) == net.genotype()


def test_search_reports_the_benchmark_accuracy_and_the_trajectory(data_root, bench_root, tmp_path, bench_of):
    """train_supernet -> search (argmax cell, benchmark accuracy/rank/regret from nas_bench_201/imagenet16_120)
    -> darts_trajectory (the argmax cell of every epoch with its benchmark accuracy and parameter-free shares)."""
    cfg = REPO / "configs/darts/nb201_pc_clr_cpu.yaml"
    opts = [f"data.root={data_root}", f"benchmark.root={bench_root}", "data.train_size=32", "data.val_size=32",
            "data.test_size=32", "data.batch_size=16", "train.epochs=2", "train.log_interval=1",
            "train.ckpt_interval=100"]
    run_tool("train_supernet.py", "--cfg", cfg, "--out", tmp_path / "sn", "--opts", *opts)
    ckpt = tmp_path / "sn/checkpoints/last.pth"
    run_tool("search.py", "--cfg", cfg, "--ckpt", ckpt, "--out", tmp_path / "s", "--opts", *opts)
    res = json.loads((tmp_path / "s/result.json").read_text())
    bench = bench_of("nas_bench_201/imagenet16_120")
    space = build_space({"type": "nas_bench_201_darts", "search_channels": 8, "cells_per_stage": 1, "partial": 4})
    state = torch.load(ckpt, weights_only=True)
    net = space.build_supernet()
    net.load_state_dict(state["model"])
    assert res["arch"] == space.encode(net.genotype())
    b = res["benchmark"]
    assert b["name"] == "nas_bench_201/imagenet16_120" and b["num_archs"] == 15625
    assert b[bench.metric] == bench.query(res["arch"])[bench.metric] and b["rank"] == bench.rank(res["arch"])
    assert b["regret"] == pytest.approx(bench.best()[1][bench.metric] - b[bench.metric])
    assert res["pfree_argmax"] == pytest.approx(sum(g in PARAMETER_FREE for g in net.genotype()) / 6)
    p = run_tool("darts_trajectory.py", "--cfg", cfg, "--ckpt", ckpt, "--out", tmp_path / "traj.json",
                 "--opts", *opts)
    traj = json.loads((tmp_path / "traj.json").read_text())
    assert [r["epoch"] for r in traj["epochs"]] == [0, 1] and [r["step"] for r in traj["epochs"]] == [2, 4]
    last = traj["epochs"][-1]
    assert last["arch"] == res["arch"] and last[bench.metric] == b[bench.metric] and last["rank"] == b["rank"]
    assert 0 <= last["pfree"] <= 1 and res["arch"] in p.stdout
    bad = run_tool("darts_trajectory.py", "--cfg", cfg, "--ckpt", tmp_path / "nope.pth", "--opts", *opts,
                   check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and len(bad.stderr.strip().splitlines()) == 1
