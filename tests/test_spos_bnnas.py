"""SPOS and BN-NAS on operator-choice supernets: supernet, BN-only training, BN indicator, tools."""
import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from nasbench.algorithms import BNNAS, SPOS, build_algorithm
from nasbench.algorithms.bnnas import freeze_all_but_last_bn, last_bn_modules
from nasbench.evaluators.indicator import BNIndicatorEvaluator, bn_score_table
from nasbench.errors import ArchError, ConfigError
from nasbench.metrics.flops import count_macs
from nasbench.spaces import NASBenchMacroSpace
from nasbench.spaces.channel_bench_macro import ChannelBenchMacroSpace
from nasbench.supernets.choice import ChoiceSupernet

from test_pipeline import REPO, _assert_clean_error, run_tool

SPOS_CFG = REPO / "configs/spos/nas_bench_macro_cpu.yaml"
BNNAS_CFG = REPO / "configs/bnnas/nas_bench_macro_cpu.yaml"


@pytest.fixture(scope="module")
def space():
    return NASBenchMacroSpace()


# ----------------------------------------------------------------------------- supernet
@pytest.mark.parametrize("arch", [(0, 0, 0, 0, 0, 0, 0, 0), (2, 1, 0, 2, 1, 0, 2, 1), (1, 2, 2, 0, 1, 2, 0, 2)])
def test_export_computes_the_supernet_function(space, arch):
    torch.manual_seed(0)
    sn = space.build_supernet()
    for m in sn.modules():  # non-trivial BN statistics and affine parameters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    sn.set_active(arch)
    sn.eval()
    sub = sn.export(arch).eval()
    x = torch.randn(3, 3, 32, 32)
    assert torch.allclose(sub(x), sn(x), atol=1e-5)
    assert sum(p.numel() for p in sub.parameters()) == space.params(arch)


def test_supernet_rejects_bad_paths(space):
    sn = space.build_supernet()
    with pytest.raises(ArchError, match="gene 3"):
        sn.set_active((0, 1, 2, 3, 0, 1, 2, 0))
    with pytest.raises(ArchError, match="9 genes"):
        sn.set_active((0,) * 9)
    with pytest.raises(ValueError, match="side"):
        sn.set_active((0,) * 8, "right")


def test_counted_lookup_tables_equal_counting_whole_networks(space):
    """The per-op tables (which reproduce the benchmark, test_nas_bench_macro) add up to whole networks."""
    base, table = space.count_flops_lut()
    assert base == space.base_flops and table == space.flops_lut[1]
    # every MB op costs MACs everywhere; the identity only where it downsamples
    assert all(row[1] > 0 and row[2] > row[1] for row in table)
    rng = np.random.default_rng(0)
    for _ in range(10):
        arch = space.sample(rng)
        with torch.device("meta"):
            counted = count_macs(space.build(arch), (3, 32, 32))
        assert space.lut_flops(arch) == counted == space.flops(arch)
        with torch.device("meta"):
            assert space.params(arch) == sum(p.numel() for p in space.build(arch).parameters())


# ----------------------------------------------------------------------------- algorithms
def test_spos_samples_uniformly_and_identically_per_seed(space):
    a, b = SPOS(space, seed=3), SPOS(space, seed=3)
    paths = [a.paths() for _ in range(3000)]
    assert paths[:50] == [b.paths() for _ in range(50)]
    counts = np.zeros((8, 3))
    for [(arch, side)] in paths:
        assert side == "left"
        counts[np.arange(8), arch] += 1
    assert np.all(np.abs(counts / 3000 - 1 / 3) < 0.04), counts / 3000


def test_spos_rejects_width_spaces():
    with pytest.raises(ConfigError, match="operator-choice"):
        SPOS(ChannelBenchMacroSpace("mobilenet"))


def test_space_family_matches_the_supernet_it_builds():
    """``family`` is what the pipeline and algorithms dispatch on; it must say which supernet is built."""
    from nasbench.registry import SPACES
    from nasbench.supernets.width import WidthSupernet
    from nasbench.supernets.base import DifferentiableSupernet
    from nasbench.supernets.base import BlockwiseSupernet
    # darts: BNAS-v2's broad network or the NAS-Bench-201 cell supernet
    kinds = {"width": WidthSupernet, "op_choice": ChoiceSupernet, "darts": DifferentiableSupernet,
             "blockwise": BlockwiseSupernet}
    small = {"bnas_v2": {"search_channels": 8}}
    for name in SPACES.names():
        cls = SPACES.get(name)
        if cls.family is None:
            assert not hasattr(cls, "build_supernet"), name
            continue
        space = SPACES.build(name, **small.get(name, {}))
        assert isinstance(space.build_supernet(), kinds[cls.family]), name


def test_loss_records_are_kept_for_the_width_prior_only(space):
    """SPOS/BN-NAS steps feed no loss records (only BCNet's width prior reads them)."""
    from nasbench.algorithms import BCNet
    images, targets = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))

    class Ctx:
        module = model = space.build_supernet()
        no_sync = autocast = staticmethod(lambda: __import__("contextlib").nullcontext())
        backward = staticmethod(lambda loss, last: loss.backward())

    spos = SPOS(space, seed=0)
    spos.setup(Ctx.module, {})
    spos.train_step(Ctx, (images, targets))
    assert spos.records == []
    width = ChannelBenchMacroSpace("mobilenet")
    Ctx.module = Ctx.model = width.build_supernet()
    bcnet = BCNet(width, seed=0)
    bcnet.setup(Ctx.module, {})
    bcnet.train_step(Ctx, (images, targets))
    assert len(bcnet.records) == 1


def test_bn_only_trains_exactly_the_last_bn_of_each_op(space):
    sn = space.build_supernet()
    n = freeze_all_but_last_bn(sn)
    trainable = {id(p) for p in sn.parameters() if p.requires_grad}
    expected = set()
    for block in sn.blocks:
        for v, op in zip(block.values, block.candidates):
            if v == 0:  # identity: a downsample conv + BN only where the shape changes
                bn = op.downsample[1] if op.downsample is not None else None
            else:
                bn = op.conv[7]
                assert isinstance(op.conv[1], nn.BatchNorm2d) and not op.conv[1].weight.requires_grad
            if bn is not None:
                expected |= {id(bn.weight), id(bn.bias)}
    assert trainable == expected
    assert n == sum(p.numel() for p in sn.parameters() if p.requires_grad)
    assert len(last_bn_modules(sn)) == 8 * 2 + 3  # two MB ops per layer + the 3 stride-2 identities


def test_bnnas_step_changes_only_the_active_last_bns(space):
    from nasbench.engine.trainer import Trainer

    class OneBatch:
        def __len__(self):
            return 1

        def epoch(self, e, start=0):
            g = torch.Generator().manual_seed(e)
            yield torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)

    torch.manual_seed(0)
    sn = space.build_supernet()
    alg = BNNAS(space, seed=0)
    before = {k: v.clone() for k, v in sn.state_dict().items()}
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        cfg = dict(epochs=1, lr=0.5, momentum=0.9, weight_decay=0.0, log_interval=1, ckpt_interval=0)
        trainer = Trainer(sn, alg, OneBatch(), cfg, d)
        rng_state = alg.rng.bit_generator.state
        trainer.fit()
    probe = np.random.default_rng()
    probe.bit_generator.state = rng_state
    arch = space.sample(probe)
    after = sn.state_dict()
    changed = {k for k in after if k.endswith(("weight", "bias")) and not torch.equal(after[k], before[k])}
    active = set()
    for layer, v in enumerate(arch):
        bn = sn.blocks[layer].op(v).last_bn
        if bn is not None:
            active |= {n for n, p in sn.named_parameters() if p is bn.weight or p is bn.bias}
    assert changed and changed <= active, (changed - active)
    assert all(len(trainer.optimizer.state[p]) == 0 for p in sn.parameters()
               if p.requires_grad and not any(p is q for n, q in sn.named_parameters() if n in active))


def test_bn_indicator_is_mean_abs_gamma_with_identity_zero(space):
    torch.manual_seed(0)
    sn = space.build_supernet()
    for _, v, op in sn.candidate_ops():
        if op.last_bn is not None:
            op.last_bn.weight.data.normal_()
    table = bn_score_table(sn)
    ev = BNIndicatorEvaluator(sn)
    arch = (2, 0, 1, 1, 0, 2, 0, 1)
    manual = sum(0.0 if v == 0 else float(sn.blocks[i].op(v).last_bn.weight.detach().abs().mean())
                 for i, v in enumerate(arch))
    assert ev.score(arch) == pytest.approx(manual)
    assert all(row[0] == 0.0 for row in table)
    rec = ev.evaluate([arch])[0]
    assert rec["flops"] == space.flops(arch) and rec["params"] == space.params(arch)
    # raising one operator's |gamma| raises exactly the subnets that use it
    sn.blocks[2].op(1).last_bn.weight.data.mul_(10)
    ev2 = BNIndicatorEvaluator(sn)
    assert ev2.score(arch) > ev.score(arch)
    assert ev2.score((2, 0, 2, 1, 0, 2, 0, 1)) == pytest.approx(ev.score((2, 0, 2, 1, 0, 2, 0, 1)))


def test_build_algorithm_by_config_name(space):
    assert isinstance(build_algorithm({"type": "bnnas"}, space), BNNAS)
    alg = build_algorithm({"type": "spos"}, space)
    assert alg.counter is None and alg.find_unused_parameters
    with pytest.raises(ConfigError, match="count_channels"):  # a width-search key, not SPOS's
        build_algorithm({"type": "spos", "count_channels": True}, space)


# ----------------------------------------------------------------------------- trainer options
def test_linear_schedule_and_clip_by_value():
    from nasbench.engine.optim import build_optimizer, build_scheduler
    m = nn.Linear(3, 1)
    opt = build_optimizer(m, dict(lr=1.0, momentum=0.0, weight_decay=0.0))
    sched = build_scheduler(opt, dict(epochs=1, lr=1.0, min_lr=0.0, schedule="linear"), steps_per_epoch=10)
    lrs = []
    for t in range(10):
        sched.step_update(num_updates=t)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([1 - t / 10 for t in range(10)])
    with pytest.raises(ConfigError, match="schedule"):
        build_scheduler(opt, dict(epochs=1, lr=1.0, schedule="exponential"), steps_per_epoch=10)


# ----------------------------------------------------------------------------- tools
def tiny_opts(data_root, recal=True):
    """Small-run overrides; ``recal``: include the accuracy evaluator's BN-recalibration keys
    (they do not apply, and are an error, under the BN indicator)."""
    return [f"data.root={data_root}", "data.train_size=128", "data.val_size=64", "data.test_size=64",
            "data.batch_size=32", "data.eval_batch_size=64", "train.max_steps=4", "train.log_interval=2",
            "train.ckpt_interval=2"] + (["eval.recal_batches=1", "eval.recal_batch_size=32"] if recal else []) + [
            "search.population=6", "search.topk=2", "search.mutation_num=2", "search.crossover_num=2",
            "search.epochs=2", "retrain.max_steps=2", "retrain.log_interval=1",
            "rank_eval.num_archs=20", "rank_eval.track_interval=2"]


@pytest.fixture(scope="module")
def bnnas_run(data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("bnnas")
    run_tool("train_supernet.py", "--cfg", BNNAS_CFG, "--out", out, "--opts", *tiny_opts(data_root, recal=False))
    return out


def test_bnnas_tools_end_to_end(bnnas_run, data_root, tmp_path, bench_root):
    opts = tiny_opts(data_root, recal=False) + [f"benchmark.root={bench_root}"]
    hist = json.loads((bnnas_run / "indicator_tau.json").read_text())["history"]
    assert [h["step"] for h in hist] == [0, 2, 4] and all(-1 <= h["kendall_tau"] <= 1 for h in hist)
    assert (bnnas_run / "indicator_tau.png").is_file()
    ckpt = bnnas_run / "checkpoints/last.pth"
    sdir = tmp_path / "search"
    run_tool("search.py", "--cfg", BNNAS_CFG, "--ckpt", ckpt, "--out", sdir, "--opts", *opts)
    res = json.loads((sdir / "result.json").read_text())
    space = NASBenchMacroSpace()
    from nasbench.config import load_config
    budget = load_config(BNNAS_CFG).search.flops_budget
    assert res["evaluator"] == "bn_indicator" and res["flops"] <= budget == res["flops_budget"]
    assert res["flops"] == space.flops(res["arch"])
    assert {"mean_acc", "rank", "regret"} <= set(res["benchmark"])
    # the EA never evaluates an architecture over the limit
    assert all(h["flops"] <= budget for h in res["history"])
    # query-budget searchers get search.num_queries from the config
    for kind in ("rea", "local"):
        run_tool("search.py", "--cfg", BNNAS_CFG, "--ckpt", ckpt, "--out", tmp_path / kind,
                 "--opts", *[o for o in opts if not o.startswith("search.")],  # the EA's keys do not apply
                 f"search.type={kind}", "search.num_queries=30")
        assert json.loads((tmp_path / kind / "result.json").read_text())["num_queries"] == 30
    edir = tmp_path / "rank"
    run_tool("rank_eval.py", "--cfg", BNNAS_CFG, "--ckpt", ckpt, "--out", edir, "--opts", *opts)
    rank = json.loads((edir / "rank.json").read_text())
    assert rank["evaluator"] == "bn_indicator" and rank["num_archs"] == 20 and rank["seconds_per_arch"] > 0
    # rank_eval scores the same seeded sample the tracker followed during training: same final tau
    assert rank["kendall_tau"] == pytest.approx(hist[-1]["kendall_tau"])


def test_spos_tools_end_to_end(data_root, tmp_path, bench_root):
    opts = tiny_opts(data_root) + [f"benchmark.root={bench_root}", "rank_eval.track_interval=null"]
    out = tmp_path / "spos"
    run_tool("train_supernet.py", "--cfg", SPOS_CFG, "--out", out, "--opts", *opts)
    ckpt = out / "checkpoints/last.pth"
    edir = tmp_path / "rank"
    run_tool("rank_eval.py", "--cfg", SPOS_CFG, "--ckpt", ckpt, "--num-archs", 4, "--out", edir, "--opts", *opts)
    rank = json.loads((edir / "rank.json").read_text())
    assert rank["evaluator"] == "accuracy" and rank["num_archs"] == 4
    assert all(0 <= a["score"] <= 100 for a in rank["archs"])
    # the same checkpoint scored by the BN indicator (SPOS full training + indicator)
    idir = tmp_path / "rank_ind"
    run_tool("rank_eval.py", "--cfg", SPOS_CFG, "--ckpt", ckpt, "--num-archs", 4, "--out", idir,
             "--opts", *tiny_opts(data_root, recal=False), f"benchmark.root={bench_root}",
             "rank_eval.track_interval=null", "eval.type=bn_indicator")
    assert json.loads((idir / "rank.json").read_text())["evaluator"] == "bn_indicator"
    rdir = tmp_path / "retrain"
    run_tool("retrain.py", "--cfg", SPOS_CFG, "--arch", "21012210", "--out", rdir, "--opts", *opts)
    res = json.loads((rdir / "result.json").read_text())
    assert res["arch"] == "21012210" and res["benchmark"]["mean_acc"] > 0


@pytest.mark.parametrize("arch,needle", [("2101221", "7 characters"), ("21012213", "position 8")])
def test_bad_nas_bench_macro_arch_is_one_clear_error(arch, needle, data_root, tmp_path):
    out = tmp_path / "r"
    p = run_tool("retrain.py", "--cfg", SPOS_CFG, "--arch", arch, "--out", out,
                 "--opts", *tiny_opts(data_root), check=False)
    _assert_clean_error(p, arch, needle)
    assert not out.exists()


def test_indicator_on_a_width_space_is_a_config_error(tmp_path):
    from nasbench.config import load_config
    from nasbench.pipeline.common import evaluator_class
    cfg = load_config(REPO / "configs/bcnet/cbm_mobilenet_cpu.yaml", ["eval.type=bn_indicator"])
    with pytest.raises(ConfigError, match="operator-choice"):
        evaluator_class(cfg, ChannelBenchMacroSpace("mobilenet").build_supernet())


def test_choice_supernet_checks_block_count(space):
    net = space.make_network([nn.Identity()] * 8, 10)
    with pytest.raises(ValueError, match="choice blocks"):
        ChoiceSupernet(net, space)


def test_every_config_loads_and_builds_its_space_and_algorithm():
    from nasbench.config import load_config
    from nasbench.spaces import build_space
    cfgs = sorted(p for p in (REPO / "configs").rglob("*.yaml") if "_base_" not in p.parts and p.parent.name != "ncp")
    assert len(cfgs) >= 13
    for p in cfgs:
        cfg = load_config(p)
        space = build_space(cfg.space, num_classes=cfg.data.num_classes)
        build_algorithm(cfg.algorithm, space)


def test_imagenet_bnnas_config_trains_and_searches_on_a_tiny_imagefolder(tmp_path, tiny_imagefolder):
    """The paper config end to end at 64x64 on 3 random classes: BN-only step (bf16), indicator search."""
    from nasbench.config import load_config
    cfg = REPO / "configs/bnnas/imagenet.yaml"
    tiny_imagefolder()
    opts = [f"data.root={tmp_path / 'imnet'}", "data.num_classes=3", "data.val_size=3", "data.batch_size=6",
            "data.image_size=64", "train.max_steps=1", "device=cpu", "search.epochs=2", "search.population=8",
            "search.topk=2", "search.mutation_num=3", "search.crossover_num=3"]
    run_tool("train_supernet.py", "--cfg", cfg, "--out", tmp_path / "run", "--opts", *opts)
    run_tool("search.py", "--cfg", cfg, "--ckpt", tmp_path / "run/checkpoints/last.pth", "--out", tmp_path / "s",
             "--opts", *opts)
    res = json.loads((tmp_path / "s/result.json").read_text())
    from nasbench.spaces.bnnas_imagenet import BNNASImageNetSpace
    arch = BNNASImageNetSpace(num_classes=3).decode(res["arch"])
    assert [arch[i] for i in (1, 5, 6, 9)] == [-1] * 4 and res["flops"] <= load_config(cfg).search.flops_budget
    assert res["evaluator"] == "bn_indicator" and "benchmark" not in res


def test_plot_tau_compares_runs(bnnas_run, tmp_path):
    out = tmp_path / "tau.png"
    p = run_tool("plot_tau.py", "--runs", bnnas_run, bnnas_run, "--labels", "a", "b",
                 "--reference", "FLOPs proxy=0.5", "--out", out)
    assert out.is_file() and p.stdout.count("stays within") == 2
    p = run_tool("plot_tau.py", "--runs", tmp_path, "--out", out, check=False)
    _assert_clean_error(p, "indicator_tau.json")
