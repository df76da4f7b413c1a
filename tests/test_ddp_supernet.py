"""A 2-process gloo DDP supernet run (torchrun) matches a 1-process run with the same global batch."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nasbench.engine.checkpoint import load_checkpoint
from nasbench.engine.dist import cleanup

REPO = Path(__file__).resolve().parents[1]
CFG = REPO / "configs/bcnet/cbm_mobilenet_cpu.yaml"
# In float32 the 2-process run differs from 1 process by rounding (other summation
# order in the BN statistics and the gradient all-reduce), amplified by the backward
# pass of a randomly initialised supernet; in float64 the two agree to 1e-12
# (test_sync_bn_ddp_exact_in_float64), which shows the difference is rounding only.
RTOL = 1e-4


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _float64_worker(rank, port, x, y, path):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    net = _net64()
    net.set_sync_bn(True)
    ddp = torch.nn.parallel.DistributedDataParallel(net)
    grads = _bcnet_grads(net, ddp, x[rank * 8:(rank + 1) * 8], y[rank * 8:(rank + 1) * 8])
    if rank == 0:
        torch.save(grads, path)
    del ddp, net  # the DDP reducer must release the group before it is torn down
    cleanup()


def _net64():
    from nasbench.spaces import ChannelBenchMacroSpace
    torch.manual_seed(0)
    return ChannelBenchMacroSpace("mobilenet", min_bins=1).build_supernet().double()


def _bcnet_grads(net, model, x, y):
    for side in ("left", "right"):  # one BCNet step: both paths, gradients accumulated
        net.set_active((2, 3, 1, 4, 2, 3, 1), side)
        torch.nn.functional.cross_entropy(model(x), y).mul(0.5).backward()
    return {k: p.grad.clone() for k, p in net.named_parameters()}


def test_sync_bn_ddp_exact_in_float64(tmp_path):
    import torch.multiprocessing as mp
    torch.manual_seed(1)
    x, y = torch.randn(16, 3, 16, 16, dtype=torch.float64), torch.randint(0, 10, (16,))
    net = _net64()
    ref = _bcnet_grads(net, net, x, y)
    path = tmp_path / "grads.pt"
    mp.start_processes(_float64_worker, args=(_free_port(), x, y, str(path)), nprocs=2, start_method="spawn")
    got = torch.load(path)
    worst = max(float((ref[k] - got[k]).abs().max()) for k in ref)
    assert worst < 1e-12, worst


def test_two_process_gloo_matches_single(data_root, tmp_path):
    opts = [f"data.root={data_root}", "data.train_size=128", "data.val_size=64", "data.batch_size=32",
            "train.max_steps=1", "train.ckpt_interval=100", "train.log_interval=1", "seed=3",
            "train.amp=none", "train.channels_last=false"]  # the fp32 rounding bound RTOL (the CPU config trains in bf16)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    single = subprocess.run([sys.executable, "tools/train_supernet.py", "--cfg", str(CFG), "--out",
                             str(tmp_path / "one"), "--opts", *opts], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                          f"--master_port={_free_port()}", "tools/train_supernet.py", "--cfg", str(CFG),
                          "--out", str(tmp_path / "two"), "--opts", *opts], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a = load_checkpoint(tmp_path / "one/checkpoints/last.pth")
    b = load_checkpoint(tmp_path / "two/checkpoints/last.pth")
    assert b["world_size"] == 2 and a["step"] == b["step"] == 1
    worst, worst_key = 0.0, None
    for k, v in a["model"].items():
        if v.is_floating_point():
            # difference relative to the tensor's scale (BN running_var reaches O(100))
            rel = float((v - b["model"][k]).abs().max() / v.abs().max().clamp_min(1.0))
            if rel > worst:
                worst, worst_key = rel, k
        else:
            assert torch.equal(v, b["model"][k]), k
    print(f"max |w_2proc - w_1proc| / max(1, max|w_1proc|) = {worst:.3e} ({worst_key})")
    assert worst < RTOL, (worst, worst_key)
    # gradients flowed (momentum buffers are non-zero), so this compares trained weights
    bufs = [st["momentum_buffer"] for st in b["optimizer"]["state"].values()]
    assert bufs and max(float(m.abs().max()) for m in bufs) > 0


def test_spos_and_bnnas_under_two_process_ddp(data_root, tmp_path, bench_root):
    """Operator-choice supernets under torchrun/gloo: every rank trains the same path (identical sampler
    states), DDP tolerates the unused candidates, and BN-NAS leaves every frozen weight at its init."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    base = [f"data.root={data_root}", "data.train_size=128", "data.val_size=64", "data.batch_size=32",
            "train.max_steps=3", "train.ckpt_interval=100", "train.log_interval=1", "seed=5",
            f"benchmark.root={bench_root}", "rank_eval.track_interval=null",
            "train.warmup_epochs=0"]  # warm-up starts at lr 0: the first path would not move
    states = {}
    for method in ("spos", "bnnas"):
        cfg = REPO / f"configs/{method}/nas_bench_macro_cpu.yaml"
        p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                            f"--master_port={_free_port()}", "tools/train_supernet.py", "--cfg", str(cfg),
                            "--out", str(tmp_path / method), "--opts", *base], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr[-3000:]
        st = load_checkpoint(tmp_path / method / "checkpoints/last.pth")
        assert st["world_size"] == 2 and st["step"] == 3
        r0, r1 = st["algorithm_ranks"]
        assert r0["rng"] == r1["rng"]
        states[method] = st["model"]
    from nasbench.spaces import NASBenchMacroSpace
    torch.manual_seed(5)  # train_supernet seeds torch with cfg.seed before building the supernet
    init = NASBenchMacroSpace().build_supernet().state_dict()
    sn = NASBenchMacroSpace().build_supernet()
    trained_bn = set()
    for _, _, op in sn.candidate_ops():
        bn = op.last_bn
        if bn is not None:
            trained_bn |= {n for n, p in sn.named_parameters() if p is bn.weight or p is bn.bias}
    frozen = [k for k, v in init.items() if v.is_floating_point() and "running" not in k and k not in trained_bn]
    assert all(torch.equal(states["bnnas"][k], init[k]) for k in frozen)
    assert any(not torch.equal(states["bnnas"][k], init[k]) for k in trained_bn)
    assert any(not torch.equal(states["spos"][k], init[k]) for k in frozen if k.endswith("conv.0.weight"))
    # the SPOS weights that moved are exactly those of the ops on the 3 paths the seeded sampler
    # draws: had the ranks drawn different paths, the all-reduce would move the other rank's ops too
    from nasbench.algorithms import SPOS
    sampler = SPOS(NASBenchMacroSpace(), seed=5)
    on_path = {(layer, arch[layer]) for arch in (sampler.paths()[0][0] for _ in range(3)) for layer in range(8)}
    names = {id(p): n for n, p in sn.named_parameters()}
    moved = {}
    for layer, value, op in sn.candidate_ops():
        keys = [names[id(p)] for p in op.parameters()]
        if keys:
            moved[(layer, value)] = any(not torch.equal(states["spos"][k], init[k]) for k in keys)
    assert moved and {lv for lv, m in moved.items() if m} == {lv for lv in moved if lv in on_path}


@pytest.mark.parametrize("unrolled", [False, True], ids=["first_order", "second_order"])
def test_bnas_v2_under_two_process_ddp(data_root, tmp_path, unrolled):
    """BNAS-v2 under torchrun/gloo: each rank takes its architecture batches from its own shard, and
    the all-reduced alpha gradients leave both ranks with the same Adam state and the same alphas
    (second order: through the trainer's optimizer in the step context)."""
    cfg = REPO / "configs/bnas_v2/cifar10_cpu.yaml"
    opts = [f"data.root={data_root}", "data.train_size=128", "data.val_size=128", "data.batch_size=32",
            "train.max_steps=3", "train.ckpt_interval=100", "train.log_interval=1",
            f"algorithm.unrolled={str(unrolled).lower()}"]
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                        f"--master_port={_free_port()}", "tools/train_supernet.py", "--cfg", str(cfg),
                        "--out", str(tmp_path / "ddp"), "--opts", *opts], cwd=REPO,
                       env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    st = load_checkpoint(tmp_path / "ddp/checkpoints/last.pth")
    assert st["world_size"] == 2 and st["step"] == 3
    r0, r1 = (r["arch_optimizer"]["state"] for r in st["algorithm_ranks"])
    assert r0.keys() == r1.keys() and len(r0) == 4  # alpha and beta of both cell types
    for k in r0:
        assert r0[k]["exp_avg"].abs().max() > 0
        assert torch.allclose(r0[k]["exp_avg"], r1[k]["exp_avg"], rtol=1e-5, atol=1e-9), k
        if unrolled:  # the second-order gradient is all-reduced as a whole: the same bits on both ranks
            assert torch.equal(r0[k]["exp_avg"], r1[k]["exp_avg"]), k
            assert torch.equal(r0[k]["exp_avg_sq"], r1[k]["exp_avg_sq"]), k


# ----------------------------------------------------------------------------- second-order DARTS, float64
class _Halves(torch.nn.Module):
    """One process standing in for 2 ranks: BN statistics per half batch, as each DDP rank computes them."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        h = len(x) // 2
        return torch.cat([self.net(x[:h]), self.net(x[h:])])

    def arch_parameters(self):
        return self.net.arch_parameters()

    def cell_weights(self, cell):
        return self.net.cell_weights(cell)

    def parameter_free_shares(self):
        return self.net.parameter_free_shares()

    def genotype(self):
        return self.net.genotype()


class _ShardLoader:
    """Architecture batches: this rank's contiguous shard of fixed global batches (as BatchLoader shards)."""

    def __init__(self, batches, rank, world):
        self.batches, self.rank, self.world = batches, rank, world

    def __len__(self):
        return len(self.batches)

    def epoch(self, e, start=0):
        for x, y in self.batches[start:]:
            n = len(y) // self.world
            yield x[self.rank * n:(self.rank + 1) * n], y[self.rank * n:(self.rank + 1) * n]


def _unrolled_run(rank, world):
    """3 second-order BNAS-v2 steps (CLR on, confidence 1/4) of a float64 search network of width 4 on
    8x8 images, global batches of 8: under DDP when ``world`` is 2, else one process with per-half BN."""
    from nasbench.algorithms import BNASv2
    from nasbench.engine.context import StepContext
    from nasbench.engine.optim import build_optimizer
    from nasbench.spaces import build_space
    space = build_space({"type": "bnas_v2", "search_channels": 4, "partial": 4})
    torch.manual_seed(0)
    net = space.build_supernet().double()
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(8, 3, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 10, (8,), generator=g))
               for _ in range(6)]
    train, val = batches[:3], batches[3:]
    module = net if world > 1 else _Halves(net)
    model = torch.nn.parallel.DistributedDataParallel(net) if world > 1 else module
    # the SGD of the weights only (built on the supernet itself, which leaves out its arch_parameters())
    opt = build_optimizer(net, dict(lr=0.1, momentum=0.9, weight_decay=3e-4, nesterov=False), fused=False)
    alg = BNASv2(space, arch_lr=0.01, unrolled=True, confidence=True)
    alg.arch_loader = _ShardLoader(val, rank, world)
    ctx = StepContext(model=model, module=module, rank=rank,
                      world_size=world, total_steps=6, steps_per_epoch=3, optimizer=opt)
    for step, (x, y) in enumerate(train):
        n = len(y) // world
        opt.zero_grad(set_to_none=True)
        ctx.step, ctx.epoch = step, 0
        alg.train_step(ctx, (x[rank * n:(rank + 1) * n], y[rank * n:(rank + 1) * n]))
        opt.step()
    out = {"alpha": [a.detach().clone() for a in net.arch_parameters()],
           "exp_avg": [st["exp_avg"].clone() for st in alg.arch_optimizer.state_dict()["state"].values()],
           "weights": {k: p.detach().clone() for k, p in net.named_parameters()}}
    del model
    return out


def _unrolled_worker(rank, port, path):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    torch.save(_unrolled_run(rank, 2), f"{path}.{rank}")
    cleanup()


def test_unrolled_bnas_v2_ddp_identical_alphas_and_exact_in_float64(tmp_path):
    """Second-order DARTS under 2-process gloo DDP: both ranks end with bit-identical alphas (and
    weights), equal to one process with the same global batches to 1e-10 in float64: the look-ahead
    step, the finite-difference direction and the result all use global-batch gradients."""
    import torch.multiprocessing as mp
    path = tmp_path / "unrolled"
    mp.start_processes(_unrolled_worker, args=(_free_port(), str(path)), nprocs=2, start_method="spawn")
    r0, r1 = torch.load(f"{path}.0"), torch.load(f"{path}.1")
    assert all(torch.equal(a, b) for a, b in zip(r0["alpha"], r1["alpha"]))
    assert all(torch.equal(v, r1["weights"][k]) for k, v in r0["weights"].items())
    torch.set_num_threads(1)
    one = _unrolled_run(0, 1)
    assert len(one["alpha"]) == 4  # alpha and beta of both cells (partial channels)
    for a, b in zip(one["exp_avg"], r0["exp_avg"]):
        assert float((a - b).abs().max()) < 1e-10 * float(a.abs().max())
    for a, b in zip(one["alpha"], r0["alpha"]):
        assert float((a - b).abs().max()) < 1e-10
    init = _unrolled_init_alpha()
    assert all(float((a - b).abs().max()) > 1e-3 for a, b in zip(one["alpha"], init))  # alphas moved


def _unrolled_init_alpha():
    from nasbench.spaces import build_space
    space = build_space({"type": "bnas_v2", "search_channels": 4, "partial": 4})
    torch.manual_seed(0)
    return [a.detach().double() for a in space.build_supernet().arch_parameters()]
