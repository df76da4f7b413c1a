"""BNAS-v2: the broad DARTS search network, the CLR architecture steps and the three tools."""
import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nasbench.algorithms import BNASv2, build_algorithm
from nasbench.engine.checkpoint import load_checkpoint
from nasbench.engine.optim import build_optimizer
from nasbench.errors import ConfigError
from nasbench.ops.darts import PRIMITIVES, MixedOp, channel_shuffle
from nasbench.spaces import build_space
from nasbench.supernets.darts import NUM_EDGES, BroadSearchNetwork, parameter_free_share

from test_pipeline import REPO, run_tool

CFG = REPO / "configs/bnas_v2/cifar10_cpu.yaml"


def space_of(**kw):
    kwargs = {"search_channels": 8, "init_channels": 8, **kw}
    return build_space({"type": "bnas_v2", **kwargs})


# ----------------------------------------------------------------------------- search network
@pytest.mark.parametrize("C", [8, 16])
def test_search_network_widths_follow_the_reference(C):
    """Reference model_search_b (layers 2, en_layers 1): GAP taps C and 2C, enhancement cell on
    (2C tap, 16C tap) at node width 4C, its 16C output tap; classifier on 19C features."""
    net = BroadSearchNetwork(C)
    assert net.classifier.in_features == 19 * C
    assert [t.op[1].out_channels for t in net.gap_taps] == [C, 2 * C]
    assert [t.op[1].out_channels for t in net.en_taps] == [2 * C, 16 * C]
    cell = net.en_cells[0]
    assert (cell.preprocess0.op[1].in_channels, cell.preprocess1.op[1].in_channels) == (2 * C, 16 * C)
    assert cell.preprocess1.op[1].out_channels == 4 * C
    # the second convolution cell follows a reduction: its first input is factorized-reduced
    assert type(net.conv_cells[1].preprocess0).__name__ == "FactorizedReduce"
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert [tuple(p.shape) for p in net.arch_parameters()] == [(NUM_EDGES, len(PRIMITIVES))] * 2


def test_partial_channels_bypass_and_shuffle():
    """PC: 1/K of the channels through the ops, the rest passed on unchanged, then shuffled."""
    torch.manual_seed(0)
    x = torch.randn(2, 8, 6, 6)
    op = MixedOp(8, 1, partial=4).eval()
    w = F.softmax(torch.randn(len(PRIMITIVES)), 0)
    out = op(x, w)
    mixed = sum(wi * o(x[:, :2]) for wi, o in zip(w, op._ops))
    assert torch.allclose(out, channel_shuffle(torch.cat([mixed, x[:, 2:]], 1), 4))
    # channel 1 of the output is input channel 2 (the first bypassed one)
    assert torch.equal(out[:, 1], x[:, 2])
    with pytest.raises(ValueError, match="divisible"):
        MixedOp(6, 1, partial=4)


def test_genotype_keeps_two_strongest_edges_and_ignores_none():
    net = BroadSearchNetwork(8)
    with torch.no_grad():
        net.alpha_conv.zero_()
        net.alpha_conv[:, PRIMITIVES.index("none")] = 10.0  # 'none' never wins
        # node 0 (edges 0, 1): sep_conv_5x5 on input 1 strongest, then max_pool on input 0
        net.alpha_conv[1, PRIMITIVES.index("sep_conv_5x5")] = 5.0
        net.alpha_conv[0, PRIMITIVES.index("max_pool_3x3")] = 3.0
        # node 3 (edges 9..13 = inputs 0..4): inputs 4 and 2
        net.alpha_conv[13, PRIMITIVES.index("dil_conv_3x3")] = 4.0
        net.alpha_conv[11, PRIMITIVES.index("skip_connect")] = 3.0
    g = net.genotype()
    assert g.normal[:2] == [("max_pool_3x3", 0), ("sep_conv_5x5", 1)]
    assert g.normal[6:] == [("skip_connect", 2), ("dil_conv_3x3", 4)]
    assert all(op != "none" for op, _ in g.normal + g.reduce)
    space = space_of()
    assert space.genotype(space.from_genotype(g)).normal == g.normal


def test_edge_normalisation_changes_the_chosen_edges():
    """PC: an edge's strength is its op weight times softmax(beta) over the node's edges."""
    net = BroadSearchNetwork(8, partial=4)
    with torch.no_grad():
        net.alpha_enhance.zero_()
        net.alpha_enhance[2, PRIMITIVES.index("sep_conv_3x3")] = 2.0  # node 1: input 0 strongest op
        net.beta_enhance.zero_()
    assert [j for _, j in net.genotype().reduce[2:4]][0] == 0
    with torch.no_grad():
        net.beta_enhance[2] = -10.0  # ... but its edge is normalised away
    assert 0 not in [j for _, j in net.genotype().reduce[2:4]]
    assert len(net.arch_parameters()) == 4


def test_weight_optimizer_leaves_out_the_architecture_parameters():
    net = BroadSearchNetwork(8, partial=4)
    opt = build_optimizer(net, dict(lr=0.1, momentum=0.9, weight_decay=3e-4))
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert not in_opt & {id(p) for p in net.arch_parameters()}
    assert len(in_opt) == sum(1 for _ in net.parameters()) - 4


# ----------------------------------------------------------------------------- algorithm
class _Ctx:
    """The parts of the trainer's StepContext the algorithm uses (one process)."""

    def __init__(self, net, epoch=0, steps_per_epoch=10, total_steps=40):
        self.model = self.module = net
        self.criterion = nn.CrossEntropyLoss()
        self.device = torch.device("cpu")
        self.step, self.epoch = epoch * steps_per_epoch, epoch
        self.steps_per_epoch, self.total_steps = steps_per_epoch, total_steps

    def autocast(self):
        import contextlib
        return contextlib.nullcontext()

    def backward(self, loss, last=True):
        loss.backward()


class _ArchLoader:
    def __init__(self, x, y):
        self.x, self.y, self.calls = x, y, []

    def __len__(self):
        return 3

    def epoch(self, e, start=0):
        self.calls.append((e, start))
        yield self.x, self.y


def _algo_and_net(**kw):
    torch.manual_seed(0)
    space = space_of(partial=4)
    alg = BNASv2(space, arch_lr=0.01, **kw)
    net = space.build_supernet()
    alg.arch_loader = _ArchLoader(torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,)))
    return alg, net


def test_step_updates_alpha_by_adam_and_keeps_only_the_weight_gradients():
    alg, net = _algo_and_net(confidence=False)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    a0 = [p.detach().clone() for p in net.arch_parameters()]
    ref = BroadSearchNetwork(8, partial=4)
    ref.load_state_dict(net.state_dict())
    out = alg.train_step(_Ctx(net, epoch=1), (x, y))
    assert alg.arch_loader.calls == [(3, 1)]  # step 10 of a 3-batch architecture loader
    assert all(not torch.equal(a, p) for a, p in zip(a0, net.arch_parameters()))
    # Adam's first step moves every alpha entry with a gradient by about lr
    moved = (net.alpha_conv - a0[0]).abs()
    assert moved.max().item() == pytest.approx(0.01, rel=1e-3)
    # the weights' gradients are those of the training batch alone, at the updated alphas
    with torch.no_grad():
        for p, q in zip(ref.arch_parameters(), net.arch_parameters()):
            p.copy_(q)
    F.cross_entropy(ref(x), y).backward()
    for (n, p), q in zip(net.named_parameters(), ref.parameters()):
        if "alpha" not in n and "beta" not in n and p.grad is not None:
            assert torch.allclose(p.grad, q.grad, atol=1e-6), n
    assert {"loss", "arch_loss", "arch_lr", "pfree_conv", "pfree_enhance"} <= set(out)


def test_architecture_batches_follow_the_step_and_reuse_one_iterator_per_epoch():
    class Numbered:
        calls = []

        def __len__(self):
            return 3

        def epoch(self, e, start=0):
            self.calls.append((e, start))
            for i in range(start, 3):
                yield torch.full((1,), 10.0 * e + i), torch.zeros(1)

    alg = BNASv2(space_of(), arch_lr=0.01)
    alg.arch_loader = Numbered()
    seen = [alg._arch_batch(t, "cpu")[0].item() for t in (0, 1, 2, 3, 4, 8, 9)]
    assert seen == [0, 1, 2, 10, 11, 22, 30]
    assert Numbered.calls == [(0, 0), (1, 0), (2, 2), (3, 0)]  # new iterators only at epochs and the jump


def test_confident_learning_rate_and_late_start():
    alg, net = _algo_and_net(confidence=True, confidence_power=2)
    assert [alg.confidence_factor(e, 50) for e in (0, 9, 49)] == pytest.approx([1 / 2500, 0.04, 1.0])
    out = alg.train_step(_Ctx(net, epoch=1, steps_per_epoch=10, total_steps=40), _batch())
    assert out["arch_lr"] == pytest.approx(0.01 * (2 / 4) ** 2)  # E = the run's 4 epochs
    late, net2 = _algo_and_net(arch_start_epoch=2)
    a0 = net2.alpha_conv.detach().clone()
    out = late.train_step(_Ctx(net2, epoch=1), _batch())
    assert "arch_loss" not in out and torch.equal(a0, net2.alpha_conv) and not late.arch_loader.calls


def _batch():
    return torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))


def test_drop_path_ramps_per_epoch_in_the_trainer(tmp_path):
    """Retraining: drop_path_prob = drop_path * epoch / epochs (reference train_b.py), set per epoch."""
    from nasbench.algorithms.supervised import StandardAlgorithm
    from nasbench.engine.trainer import HookBase, Trainer

    class Loader:
        def __len__(self):
            return 2

        def epoch(self, e, start=0):
            for _ in range(start, 2):
                yield torch.randn(2, 3, 32, 32), torch.randint(0, 10, (2,))

    class Seen(HookBase):
        probs = []

        def after_step(self, trainer, metrics):
            self.probs.append(trainer.module.drop_path_prob)

    net = space_of().build(space_of().sample(__import__("numpy").random.default_rng(0)))
    cfg = dict(epochs=4, lr=0.01, drop_path=0.2, log_interval=100, ckpt_interval=100)
    Trainer(net, StandardAlgorithm(), Loader(), cfg, tmp_path / "a", hooks=[Seen()]).fit()
    assert Seen.probs == pytest.approx([0, 0, 0.05, 0.05, 0.1, 0.1, 0.15, 0.15])
    with pytest.raises(ConfigError, match="drop_path_prob"):
        Trainer(nn.Linear(2, 2), StandardAlgorithm(), Loader(), cfg, tmp_path / "b")


def test_parameter_free_share():
    w = torch.zeros(NUM_EDGES, len(PRIMITIVES))
    w[:, PRIMITIVES.index("skip_connect")] = 1.0
    assert parameter_free_share(w) == 1.0
    assert parameter_free_share(torch.full((NUM_EDGES, 8), 1 / 8)) == pytest.approx(3 / 8)


def test_config_errors():
    space = space_of()
    alg = build_algorithm({"type": "bnas_v2", "unrolled": True}, space)
    net = space.build_supernet()
    ctx = _Ctx(net)
    ctx.optimizer = torch.optim.Adam(net.parameters())
    alg.arch_loader = _ArchLoader(*_batch())
    with pytest.raises(ConfigError, match="SGD"):  # second order looks ahead one step of the trainer's SGD
        alg.train_step(ctx, _batch())
    with pytest.raises(ConfigError, match="DARTS"):
        build_algorithm({"type": "bnas_v2"}, build_space({"type": "nas_bench_macro"}))
    with pytest.raises(ConfigError, match="divide"):
        space_of(search_channels=6, partial=4)


# ----------------------------------------------------------------------------- second order
def _smooth(module):
    """ReLU -> softplus and max -> average pooling: finite differences need a smooth loss (a ReLU kink
    crossed inside the finite-difference step adds a jump of O(1 / step) to the estimate)."""
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            setattr(module, name, nn.Softplus(beta=2.0))
        elif isinstance(child, nn.MaxPool2d):
            setattr(module, name, nn.AvgPool2d(3, child.stride, 1))
        else:
            _smooth(child)
    return module


def _tiny_problem(sgd):
    """A float64 search network of width 2 on 8x8 images, its weight SGD with a momentum buffer, two batches."""
    torch.manual_seed(0)
    net = _smooth(BroadSearchNetwork(2, num_classes=3)).double()
    with torch.no_grad():
        for a in net.arch_parameters():
            a.normal_(0, 0.5)  # away from uniform, so every term of the hypergradient matters
    opt = build_optimizer(net, dict(lr=0.05, **sgd), fused=False)
    xt, yt = torch.randn(4, 3, 8, 8, dtype=torch.float64), torch.randint(0, 3, (4,))
    xv, yv = torch.randn(4, 3, 8, 8, dtype=torch.float64), torch.randint(0, 3, (4,))
    F.cross_entropy(net(xv), yv).backward()  # one earlier step: momentum buffers exist
    opt.step()
    opt.zero_grad(set_to_none=True)
    from nasbench.engine.context import StepContext
    ctx = StepContext(model=net, module=net, optimizer=opt)
    return net, opt, ctx, (xt, yt, xv, yv)


def _brute_force_val_loss(net, opt, alphas, xt, yt, xv, yv):
    """L_val(w', alpha) with w' from a real step of a copy of ``opt`` on grad_w L_train(w, alpha)."""
    import copy
    m = copy.deepcopy(net)
    with torch.no_grad():
        for a, v in zip(m.arch_parameters(), alphas):
            a.copy_(v)
    arch = {id(a) for a in m.arch_parameters()}
    weights = [p for p in m.parameters() if id(p) not in arch]
    groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [weights[i] for i in idx]}
              for g, idx in zip(opt.param_groups, _group_index(net, opt))]
    o = torch.optim.SGD(groups)
    o.load_state_dict(copy.deepcopy(opt.state_dict()))  # deep: load_state_dict would share the buffers
    F.cross_entropy(m(xt), yt).backward()
    o.step()
    with torch.no_grad():
        return F.cross_entropy(m(xv), yv).item()


def _group_index(net, opt):
    arch = {id(a) for a in net.arch_parameters()}
    pos = {id(p): i for i, p in enumerate(p for p in net.parameters() if id(p) not in arch)}
    return [[pos[id(p)] for p in g["params"]] for g in opt.param_groups]


@pytest.mark.parametrize("sgd", [dict(momentum=0.0, weight_decay=0.0, nesterov=False),  # w - xi grad L_train
                                 dict(momentum=0.9, weight_decay=3e-4, nesterov=False),  # DARTS' form
                                 dict(momentum=0.9, weight_decay=3e-4, nesterov=True, no_wd_bn=True)],
                         ids=["plain", "momentum_wd", "nesterov_groups"])
def test_unrolled_hypergradient_matches_brute_force_finite_differences(sgd):
    """d/dalpha L_val(w - xi (m buf + grad L_train(w, alpha) + wd w), alpha) by central differences of the
    whole function (a real SGD step per evaluation), float64: the second-order gradient agrees along
    random and coordinate directions to O(r^2) of its finite-difference Hessian-vector product."""
    net, opt, ctx, (xt, yt, xv, yv) = _tiny_problem(sgd)
    alg = BNASv2(space_of(), unrolled=True)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    bufs = [opt.state[p]["momentum_buffer"].clone() for g in opt.param_groups for p in g["params"]
            if "momentum_buffer" in opt.state[p]]
    grads, val_loss = alg.unrolled_arch_grads(ctx, xt, yt, xv, yv)
    # nothing of the network or the optimizer changed (no copy of the network either)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert all(p.grad is None for p in net.parameters() if not any(p is a for a in net.arch_parameters()))
    assert all(torch.equal(b, opt.state[p]["momentum_buffer"]) for b, p in
               zip(bufs, [p for g in opt.param_groups for p in g["params"] if "momentum_buffer" in opt.state[p]]))
    alpha0 = [a.detach().clone() for a in net.arch_parameters()]
    assert val_loss.item() == pytest.approx(_brute_force_val_loss(net, opt, alpha0, xt, yt, xv, yv), rel=1e-12)
    alg.unrolled_r = 1e-4  # DARTS' 0.01 leaves an O(r^2) error of about 0.3% here; 1e-4 about 3e-7
    fine, _ = alg.unrolled_arch_grads(ctx, xt, yt, xv, yv)
    first_order = torch.autograd.grad(F.cross_entropy(net(xv), yv), net.arch_parameters())
    g = torch.Generator().manual_seed(1)
    directions = [[torch.randn(a.shape, generator=g, dtype=a.dtype) for a in alpha0] for _ in range(3)]
    for k, idx in ((0, (0, 4)), (1, (13, 7))):  # two coordinates
        e = [torch.zeros_like(a) for a in alpha0]
        e[k][idx] = 1.0
        directions.append(e)
    h = 1e-5
    for d in directions:
        plus = _brute_force_val_loss(net, opt, [a + h * di for a, di in zip(alpha0, d)], xt, yt, xv, yv)
        minus = _brute_force_val_loss(net, opt, [a - h * di for a, di in zip(alpha0, d)], xt, yt, xv, yv)
        brute = (plus - minus) / (2 * h)
        dot = lambda gs: sum(float((gi * di).sum()) for gi, di in zip(gs, d))  # noqa: E731
        assert dot(fine) == pytest.approx(brute, rel=1e-5, abs=1e-8)
        assert dot(grads) == pytest.approx(brute, rel=2e-2, abs=1e-4)
    # the second-order term matters here: the first-order gradient is far off
    gap = max(float((a - b).abs().max()) for a, b in zip(first_order, fine))
    assert gap > 100 * max(float((a - b).abs().max()) for a, b in zip(grads, fine))


@pytest.mark.parametrize("kw", [dict(momentum=0.9, nesterov=False, dampening=0.0),
                                dict(momentum=0.9, nesterov=True), dict(momentum=0.8, dampening=0.3),
                                dict(momentum=0.0)])
def test_sgd_lookahead_is_torchs_sgd_step(kw):
    from nasbench.algorithms.darts import sgd_lookahead
    torch.manual_seed(0)
    ps = [nn.Parameter(torch.randn(3, 4, dtype=torch.float64)), nn.Parameter(torch.randn(5, dtype=torch.float64)),
          nn.Parameter(torch.randn(2, dtype=torch.float64))]
    opt = torch.optim.SGD([{"params": ps[:2], "weight_decay": 0.1}, {"params": ps[2:], "lr": 0.3}], lr=0.05, **kw)
    for step in range(3):  # the first step has no momentum buffer yet
        grads = [torch.randn_like(p) for p in ps[:2]] + [None]  # a parameter without gradient is not stepped
        new, eta = sgd_lookahead(opt, ps, grads)
        for p, g in zip(ps, grads):
            p.grad = g
        opt.step()
        assert all(torch.allclose(a, p, atol=1e-14, rtol=0) for a, p in zip(new, ps)), step
        assert eta[2] is None and not new[0].requires_grad
        m, tau = kw["momentum"], kw.get("dampening", 0.0)
        slope = 1.0 if not m else (1.0 if step == 0 else 1.0 - tau)
        if kw.get("nesterov"):
            slope = 1.0 + m * slope
        assert eta[0] == pytest.approx(0.05 * slope)


def test_unrolled_step_scales_the_loss_by_the_confidence_not_adams_lr():
    """Reference second order: L_val * confidence, Adam at arch_lr (module doc: Adam undoes most of it)."""
    outs, grads = {}, {}
    for conf in (False, True):
        alg, net = _algo_and_net(confidence=conf, unrolled=True)
        ctx = _Ctx(net, epoch=1, steps_per_epoch=10, total_steps=40)
        ctx.optimizer = build_optimizer(net, dict(lr=0.1, momentum=0.9, weight_decay=3e-4))
        seen = []
        alg.setup(net, None)
        alg.arch_optimizer.register_step_pre_hook(
            lambda o, a, k: seen.append([p.grad.clone() for p in o.param_groups[0]["params"]]))
        outs[conf] = alg.train_step(ctx, _batch())
        grads[conf] = seen[0]
    assert outs[True]["arch_lr"] == outs[False]["arch_lr"] == 0.01
    assert outs[True]["arch_confidence"] == pytest.approx((2 / 4) ** 2) and outs[False]["arch_confidence"] == 1
    assert outs[True]["arch_loss"] == outs[False]["arch_loss"]  # logged before the scaling
    for a, b in zip(grads[True], grads[False]):
        assert torch.allclose(a, 0.25 * b, rtol=1e-4, atol=1e-9)
    assert {"loss", "arch_loss", "arch_lr", "pfree_conv", "pfree_enhance"} <= set(outs[True])


# ----------------------------------------------------------------------------- tools
def tiny_opts(data_root):
    return [f"data.root={data_root}", "data.train_size=96", "data.val_size=64", "data.test_size=64",
            "data.batch_size=32", "data.eval_batch_size=64", "train.epochs=2", "train.log_interval=1",
            "train.ckpt_interval=2", "retrain.max_steps=2", "retrain.log_interval=1"]


def test_tools_end_to_end_and_exact_resume(data_root, tmp_path):
    opts = tiny_opts(data_root)
    full, part = tmp_path / "full", tmp_path / "part"
    from nasbench.config import load_config
    from nasbench.pipeline import train_supernet
    # both in this process: the same thread count, hence bit-identical arithmetic (Adam
    # turns last-bit differences of near-zero alpha gradients into visible ones)
    train_supernet(load_config(CFG, opts), full)
    train_supernet(load_config(CFG, opts), part, stop_after=4)  # preempted after 4 of 6 steps
    train_supernet(load_config(CFG, opts), part, resume=True)
    a = load_checkpoint(full / "checkpoints/last.pth")
    b = load_checkpoint(part / "checkpoints/last.pth")
    assert a["step"] == b["step"] == 6
    for k in ("alpha_conv", "alpha_enhance", "beta_conv", "beta_enhance"):
        assert torch.equal(a["model"][k], b["model"][k]), k  # Adam state and batches resumed exactly
    logs = [json.loads(line) for line in (full / "log.jsonl").read_text().splitlines()]
    lrs = [r["train/arch_lr"] for r in logs if "train/arch_lr" in r]
    assert lrs[0] == pytest.approx(6e-4 / 4) and lrs[-1] == pytest.approx(6e-4)  # CLR over 2 epochs
    # the collapse signal can be plotted from the log; a key that was not logged is one clear error
    p = run_tool("plot_log.py", "--runs", full, part, "--keys", "train/pfree_conv", "train/arch_lr",
                 "--out", tmp_path / "pfree.png")
    assert (tmp_path / "pfree.png").is_file() and p.stdout.count("->") == 4
    p = run_tool("plot_log.py", "--runs", full, "--keys", "train/nope", "--out", tmp_path / "x.png", check=False)
    assert p.returncode == 2 and "train/pfree_conv" in p.stderr and not (tmp_path / "x.png").exists()
    sdir = tmp_path / "search"
    run_tool("search.py", "--cfg", CFG, "--ckpt", full / "checkpoints/last.pth", "--out", sdir, "--opts", *opts)
    res = json.loads((sdir / "result.json").read_text())
    space = build_space({"type": "bnas_v2", "search_channels": 8, "partial": 4, "init_channels": 16})
    arch = space.decode(res["arch"])
    assert (res["flops"], res["params"]) == space.cost(arch)
    assert all(sum(row) == pytest.approx(1) for row in res["weights"]["conv"] + res["weights"]["enhance"])
    assert len(res["edge_weights"]["enhance"]) == 14  # the CPU config uses partial channels
    net = space.build_supernet()
    net.load_state_dict(a["model"])
    assert space.from_genotype(net.genotype()) == arch
    rdir = tmp_path / "retrain"
    run_tool("retrain.py", "--cfg", CFG, "--arch", sdir / "result.json", "--out", rdir, "--opts", *opts)
    assert json.loads((rdir / "result.json").read_text())["params"] == res["params"]


def test_unrolled_search_resumes_exactly(data_root, tmp_path):
    """Second order, stopped after 3 of 4 steps (mid-epoch, with momentum buffers and Adam moments) and
    resumed: the same alphas and weights, bit for bit, as the uninterrupted run."""
    from nasbench.config import load_config
    from nasbench.pipeline import train_supernet
    opts = [f"data.root={data_root}", "data.train_size=32", "data.val_size=32", "data.test_size=32",
            "data.batch_size=16", "train.epochs=2", "train.log_interval=1", "train.ckpt_interval=100",
            "algorithm.unrolled=true", "space.search_channels=4"]
    full, part = tmp_path / "full", tmp_path / "part"
    train_supernet(load_config(CFG, opts), full)
    train_supernet(load_config(CFG, opts), part, stop_after=3)
    train_supernet(load_config(CFG, opts), part, resume=True)
    a = torch.load(full / "checkpoints/last.pth", weights_only=False)
    b = torch.load(part / "checkpoints/last.pth", weights_only=False)
    assert a["step"] == b["step"] == 4
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    logs = [json.loads(line) for line in (full / "log.jsonl").read_text().splitlines()]
    conf = [r["train/arch_confidence"] for r in logs if "train/arch_confidence" in r]
    assert conf == pytest.approx([0.25, 0.25, 1.0, 1.0])  # CLR on the loss: ((epoch + 1) / 2) ** 2
    assert [r["train/arch_lr"] for r in logs if "train/arch_lr" in r] == pytest.approx([6e-4] * 4)  # Adam's lr fixed


def test_per_architecture_evaluators_do_not_fit_a_darts_supernet():
    from nasbench.config import load_config
    from nasbench.evaluators import EvalContext
    from nasbench.pipeline.common import evaluator_class, supernet_evaluator
    space = space_of()
    alg = build_algorithm({"type": "bnas_v2"}, space)
    supernet = space.build_supernet()
    assert load_config(CFG).eval.type == "genotype"  # auto -> the algorithm's default evaluator
    for kind in ("accuracy", "bn_indicator"):
        with pytest.raises(ConfigError):
            evaluator_class(load_config(CFG, [f"eval.type={kind}"]), supernet)
    ev = supernet_evaluator(load_config(CFG), supernet, alg, None, torch.device("cpu"))
    with pytest.raises(ConfigError, match="no per-architecture evaluator"):
        ev.evaluate([space.sample(__import__("numpy").random.default_rng(0))])
    arch, extras = ev.best_architecture()
    assert space.encode(arch) == space.encode(space.from_genotype(supernet.genotype()))
    assert extras["searcher"] == "argmax"
    macro = build_space({"type": "nas_bench_macro"})
    with pytest.raises(ConfigError, match="genotype"):
        evaluator_class(load_config(CFG, ["eval.type=genotype"]), macro.build_supernet())
