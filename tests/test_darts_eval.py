"""DARTS-cell evaluation networks and named genotypes: exact reference params, model_info, ImageNet steps.

The expected parameter counts below were computed from the reference implementations, not
from this package: a throwaway script (not in the repository) imported quark0/darts
``cnn/model.py`` + ``operations.py`` + ``genotypes.py`` (commit of the fetched mirror) and
zixiangding/BNASv2 ``BNASv2PC/model_b.py`` / ``BNASv2CLR/model_b.py`` with their own
``operations.py`` and ``genotypes.py``, built

* ``NetworkCIFAR(36, 10, 20, True, genotype)`` (DARTS CIFAR-10),
* ``NetworkImageNet(48, 1000, 14, True, genotype)`` (DARTS ImageNet mobile),
* ``NetworkImageNet_b2(44, 1000, 6, False, genotype, en_layers=2, pool_time=2)`` (BNAS-v2 ImageNet),
* ``Network(48, 10, 6, genotype, "cifar10", en_layers=2)`` (BNAS-v2 CIFAR-10, ``BNASv2CLR/model_b.py``),

on the meta device and summed ``p.numel()`` over ``parameters()``; "without aux" leaves out
every parameter whose name contains ``auxiliary``, as DARTS' ``utils.count_parameters_in_MB``
does (DARTS_V2 CIFAR: 3.35M, the paper's 3.3M; ImageNet 4.72M, the paper's 4.7M).
The same script checked that the seven genotypes of :data:`GENOTYPES` equal the references'
``genotypes.py`` entries op for op and index for index.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import nasbench.spaces  # noqa: F401  (registers the spaces)
from nasbench.config import load_config
from nasbench.engine.checkpoint import load_checkpoint
from nasbench.errors import ArchError, ConfigError
from nasbench.metrics.flops import auxiliary_params, count_params
from nasbench.pipeline.common import read_arch
from nasbench.registry import SPACES
from nasbench.spaces import build_space
from nasbench.ops.darts import cell_plan
from nasbench.spaces.bnas_v2 import GENOTYPES, broad_plan
from nasbench.spaces.darts import DartsNetwork, darts_plan

REPO = Path(__file__).resolve().parents[1]
NAMES = ("DARTS_V1", "DARTS_V2", "BNASv2_CLR_v1", "BNASv2_CLR_v2", "BNASv2_PC_cifar_v1", "BNASv2_PC_cifar_v2",
         "BNASv2_PC_image")
#: reference params ``(without aux, with aux)`` per genotype (module doc)
DARTS_CIFAR = {"DARTS_V1": (3169414, 3645840), "DARTS_V2": (3349342, 3825768),
               "BNASv2_CLR_v1": (3785878, 4262304), "BNASv2_CLR_v2": (3381094, 3857520),
               "BNASv2_PC_cifar_v1": (4331062, 4807488), "BNASv2_PC_cifar_v2": (4347910, 4824336),
               "BNASv2_PC_image": (4155238, 4631664)}
DARTS_IMAGENET = {"DARTS_V1": (4510432, 5771208), "DARTS_V2": (4718752, 5979528),
                  "BNASv2_CLR_v1": (5227648, 6488424), "BNASv2_CLR_v2": (4772608, 6033384),
                  "BNASv2_PC_cifar_v1": (5905216, 7165992), "BNASv2_PC_cifar_v2": (5916928, 7177704),
                  "BNASv2_PC_image": (5724640, 6985416)}
#: no auxiliary head in the broad networks
BNAS_IMAGENET = {"DARTS_V1": 3633222, "DARTS_V2": 3697110, "BNASv2_CLR_v1": 3829110, "BNASv2_CLR_v2": 3690070,
                 "BNASv2_PC_cifar_v1": 4119510, "BNASv2_PC_cifar_v2": 3990678, "BNASv2_PC_image": 4112998}
BNAS_CIFAR = {"DARTS_V1": 3108634, "DARTS_V2": 3184090, "BNASv2_CLR_v1": 3338074, "BNASv2_CLR_v2": 3174874,
              "BNASv2_PC_cifar_v1": 3678682, "BNASv2_PC_cifar_v2": 3525850, "BNASv2_PC_image": 3671962}


def _space(cfg):
    c = load_config(REPO / cfg)
    return build_space(c.space, num_classes=c.data.num_classes)


def _counts(space, name):
    """(params without aux, with aux) of the built network of the named genotype, on the meta device."""
    arch = read_arch(space, name)
    with torch.device("meta"):
        net = space.build(arch)
    total = count_params(net)
    return total - auxiliary_params(net), total


@pytest.mark.parametrize("name", NAMES)
def test_params_equal_the_reference_implementations(name):
    cifar, imnet = _space("configs/darts/cifar10.yaml"), _space("configs/darts/imagenet.yaml")
    assert _counts(cifar, name) == DARTS_CIFAR[name]
    assert _counts(imnet, name) == DARTS_IMAGENET[name]
    b_imnet = _space("configs/bnas_v2/imagenet.yaml")
    assert _counts(b_imnet, name) == (BNAS_IMAGENET[name],) * 2
    assert _counts(_space("configs/bnas_v2/cifar10.yaml"), name) == (BNAS_CIFAR[name],) * 2
    # the space's params() is the count without the auxiliary head
    assert cifar.params(read_arch(cifar, name)) == DARTS_CIFAR[name][0]
    assert b_imnet.params(read_arch(b_imnet, name)) == BNAS_IMAGENET[name]


def test_named_genotypes_round_trip_in_both_spaces():
    broad, darts = SPACES.build("bnas_v2"), SPACES.build("darts")
    for space in (broad, darts):
        named = space.named_architectures()
        assert set(named) == set(NAMES)
        for name, g in GENOTYPES.items():
            back = space.genotype(named[name])
            for mine, ref in ((back.normal, g.normal), (back.reduce, g.reduce)):  # per node, edge order free
                assert [sorted(mine[2 * n:2 * n + 2], key=lambda e: e[1]) for n in range(4)] == \
                       [sorted(ref[2 * n:2 * n + 2], key=lambda e: e[1]) for n in range(4)]
            assert space.decode(space.encode(named[name])) == named[name]
    # one encoding: the same genes in both spaces, the key names the cells as each space does
    assert broad.named_architectures() == darts.named_architectures()
    assert darts.encode(darts.named_architectures()["DARTS_V2"]).startswith("normal=sep_conv_3x3~0+sep_conv_3x3~1,")
    with pytest.raises(ArchError, match="'normal=...' or 'reduce=...'"):
        darts.decode(broad.encode(broad.named_architectures()["DARTS_V2"]))
    with pytest.raises(ArchError):
        read_arch(darts, "DARTS_V3")


def test_one_channel_plan_for_both_networks():
    """The broad network's convolution cells and DARTS' cells come from the same cell_plan."""
    assert darts_plan(36, 20).cells == cell_plan(36, 20, (6, 13), 108, False)
    p = darts_plan(48, 14, "imagenet")
    assert p.cells[0] == (48, 48, 48, False, True) and p.reductions == (4, 9) and p.C_aux == 4 * 192
    b = broad_plan(44, 6, 2, 2, stem="imagenet")
    assert b.conv_cells == cell_plan(44, 6, (2, 5), 44, True) and b.C_stem == 44
    assert b.C_final == 44 + 88 + 176 + 4 * 176  # GAP taps + en-GAP taps (C, 2C, 4C, 16C)
    with pytest.raises(ConfigError, match="stem"):
        broad_plan(44, 6, 2, stem="mnist")
    with pytest.raises(ConfigError, match="input_size"):
        SPACES.build("bnas_v2", stem="imagenet", input_size=48)


def test_darts_cifar_forward_train_and_eval():
    torch.manual_seed(0)
    net = DartsNetwork(GENOTYPES["DARTS_V2"], C=8, num_classes=10, layers=5, auxiliary=True,
                       drop_path_prob=0.2).train()
    logits, aux = net(torch.randn(2, 3, 32, 32))
    assert logits.shape == aux.shape == (2, 10)
    (logits.sum() + aux.sum()).backward()
    assert net.auxiliary_head.classifier.weight.grad is not None
    assert net.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)  # eval: logits only, no aux
    assert DartsNetwork(GENOTYPES["DARTS_V2"], C=8, layers=5, auxiliary=False).auxiliary_head is None


def test_model_info_prints_params_with_and_without_aux():
    def run(cfg, arch):
        p = subprocess.run([sys.executable, "tools/model_info.py", "--cfg", cfg, "--arch", arch], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)
    line = run("configs/darts/cifar10.yaml", "DARTS_V2")
    assert (line["params"], line["params_aux"], line["space"]) == (*DARTS_CIFAR["DARTS_V2"], "darts")
    line = run("configs/bnas_v2/imagenet.yaml", "BNASv2_PC_image")
    assert line["params"] == BNAS_IMAGENET["BNASv2_PC_image"] and "params_aux" not in line
    assert line["image_size"] == 224


def _run(tool, cfg, out, opts, arch=None):
    cmd = [sys.executable, f"tools/{tool}.py", "--cfg", cfg, "--out", str(out)]
    cmd += ["--arch", arch] if arch else []
    p = subprocess.run(cmd + ["--opts", *opts], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_darts_imagenet_retrain_step_with_auxiliary_head(tmp_path, tiny_imagefolder):
    """configs/darts/imagenet.yaml, unchanged network: its auxiliary head needs 7x7 maps, i.e. 224-pixel images."""
    root = tiny_imagefolder(classes=2, per_class=2, size=224, ext="jpg")
    out = tmp_path / "rt"
    opts = [f"data.root={root}", "data.num_classes=2", "data.val_size=2", "data.batch_size=2",
            "data.eval_batch_size=4", "retrain.max_steps=1", "retrain.warmup_epochs=0", "device=cpu"]
    logged = _run("retrain", "configs/darts/imagenet.yaml", out, opts, arch="DARTS_V2")
    losses = [(l["train/loss"], l["train/aux_loss"]) for l in logged if "train/aux_loss" in l]
    assert losses and all(np.isfinite(losses[0]))
    loss, aux = losses[0]
    assert aux > 0 and loss > 0.4 * aux  # CE(logits) + 0.4 CE(aux logits)
    res = json.loads((out / "result.json").read_text())
    assert res["steps"] == 1 and res["test_images"] == 4
    assert res["params"] == 4_718_752 - (1000 - 2) * (4 * 192 + 1)  # 2 classes: a smaller classifier, no aux
    state = load_checkpoint(out / "checkpoints/last.pth")
    assert state["model"]["auxiliary_head.classifier.weight"].shape == (2, 768)


def _bnas_imagenet_opts(tiny_imagefolder):
    root = tiny_imagefolder(classes=2, per_class=4, size=64, ext="jpg")
    return [f"data.root={root}", "data.num_classes=2", "data.val_size=2", "data.train_size=null",
            "data.batch_size=2", "data.eval_batch_size=4", "space.input_size=64", "device=cpu"]


def test_bnas_v2_imagenet_search_step(tmp_path, tiny_imagefolder):
    """configs/bnas_v2/imagenet.yaml: one search step (PC K=2, ImageNet stems, a clipped first-order
    architecture step) on 64x64 images."""
    cfg = load_config(REPO / "configs/bnas_v2/imagenet.yaml")
    assert (cfg.algorithm.arch_lr, cfg.algorithm.arch_clip_grad, cfg.algorithm.arch_start_epoch) == (0.006, 5.0, 35)
    assert (cfg.space.partial, cfg.space.stem, cfg.space.init_channels) == (2, "imagenet", 44)
    assert cfg.data.train_size == 128117 and cfg.data.val_size == 32029  # 10% / 2.5% of 1,281,167
    base = _bnas_imagenet_opts(tiny_imagefolder)
    logged = _run("train_supernet", "configs/bnas_v2/imagenet.yaml", tmp_path / "s",
                  base + ["train.max_steps=1", "train.warmup_epochs=0", "algorithm.arch_start_epoch=0",
                          "algorithm.arch_clip_grad=0.001"])
    rec = [l for l in logged if "train/arch_loss" in l]
    assert rec and np.isfinite(rec[0]["train/loss"]) and rec[0]["train/arch_grad_norm"] > 0.001  # clipped from above
    state = load_checkpoint(tmp_path / "s/checkpoints/last.pth")
    assert state["model"]["stem0.0.weight"].shape == (24, 3, 3, 3)  # 3C/2 at C=16


def test_bnas_v2_imagenet_retrain_step(tmp_path, tiny_imagefolder):
    """configs/bnas_v2/imagenet.yaml: one retraining step of NetworkImageNet_b2 (BNASv2_PC_image), 64x64 images."""
    base = _bnas_imagenet_opts(tiny_imagefolder)
    logged = _run("retrain", "configs/bnas_v2/imagenet.yaml", tmp_path / "r",
                  base + ["retrain.max_steps=1", "data.batch_size=2"], arch="BNASv2_PC_image")
    assert any(np.isfinite(l.get("train/loss", np.nan)) for l in logged)
    assert json.loads((tmp_path / "r/result.json").read_text())["steps"] == 1


def test_arch_clip_grad_bounds_the_architecture_gradient():
    """algorithm.arch_clip_grad: Adam's first moment after one step is 0.5 g (beta1 0.5, no weight decay), so its
    norm shows the clipped gradient; without clipping it carries the full one."""
    from nasbench.algorithms.darts import BNASv2
    from nasbench.engine.context import StepContext

    class Loader:
        def __len__(self):
            return 1

        def epoch(self, e, start=0):
            g = torch.Generator().manual_seed(1)
            yield torch.randn(2, 3, 32, 32, generator=g), torch.tensor([0, 1])

    norms = {}
    for clip in (None, 1e-4):
        torch.manual_seed(0)
        space = SPACES.build("bnas_v2", search_channels=8, partial=4)
        net = space.build_supernet()
        alg = BNASv2(space, arch_lr=0.01, arch_weight_decay=0.0, confidence=False, arch_clip_grad=clip)
        alg.arch_loader = Loader()
        ctx = StepContext(model=net, module=net, step=0, epoch=0, total_steps=4, steps_per_epoch=4)
        out = alg.train_step(ctx, (torch.randn(2, 3, 32, 32), torch.tensor([1, 0])))
        m = [alg.arch_optimizer.state[p]["exp_avg"] for p in net.arch_parameters()]
        norms[clip] = (torch.sqrt(sum((t ** 2).sum() for t in m)).item(), out.get("arch_grad_norm"))
    full, _ = norms[None]
    clipped, before = norms[1e-4]
    assert before == pytest.approx(2 * full, rel=1e-4)  # the unclipped norm is reported
    assert clipped == pytest.approx(0.5e-4, rel=1e-3) and full > 1e-3


def test_darts_search_networks_equal_the_references():
    """DARTS' and PC-DARTS' search networks (paper width 16, 8 cells): 1,930,842 and 299,830 parameters,
    architecture parameters included, as the references' ``Network(16, 10, 8, criterion)`` count them
    (quark0/darts ``cnn/model_search.py`` and yuhuixu1993/PC-DARTS ``model_search.py``, counted by the
    throwaway script of the module doc, which also checked that with the reference's weights copied in
    both give the same logits and genotype)."""
    for cfg, n, n_arch in (("configs/darts/cifar10_search.yaml", 1_930_842, 2 * 14 * 8),  # alphas
                           ("configs/darts/cifar10_search_pc.yaml", 299_830, 2 * 14 * 8 + 2 * 14)):  # + betas
        with torch.device("meta"):
            net = _space(cfg).build_supernet()
        assert count_params(net) == n
        assert sum(p.numel() for p in net.arch_parameters()) == n_arch
        assert [c.reduction for c in net.cells] == [False, False, True, False, False, True, False, False]


@pytest.mark.parametrize("cfg", ["cifar10_search", "cifar10_search_unrolled", "cifar10_search_pc"])
def test_darts_search_configs_run_an_architecture_and_a_weight_step(cfg):
    """First-order, second-order DARTS and PC-DARTS over the standard search network (narrowed to
    width 8 and 3 cells, 16x16 images): the architecture moves, the genotype is an architecture of the space."""
    from nasbench.algorithms.darts import BNASv2
    from nasbench.engine.context import StepContext
    from nasbench.engine.optim import build_optimizer
    c = load_config(REPO / f"configs/darts/{cfg}.yaml")
    space = SPACES.build("darts", **{**{k: v for k, v in c.space.to_dict().items() if k != "type"},
                                     "search_channels": 8, "search_layers": 3})
    kw = {k: v for k, v in c.algorithm.to_dict().items() if k not in ("type", "arch_start_epoch")}
    torch.manual_seed(0)
    net = space.build_supernet()
    alg = BNASv2(space, **kw)

    class Loader:
        def __len__(self):
            return 1

        def epoch(self, e, start=0):
            yield torch.randn(2, 3, 16, 16), torch.tensor([0, 1])

    alg.arch_loader = Loader()
    opt = build_optimizer(net, c.train, fused=False)
    ctx = StepContext(model=net, module=net, step=0, epoch=0, total_steps=4, steps_per_epoch=4, optimizer=opt)
    a0 = [a.detach().clone() for a in net.arch_parameters()]
    out = alg.train_step(ctx, (torch.randn(2, 3, 16, 16), torch.tensor([1, 0])))
    assert np.isfinite(float(out["loss"])) and np.isfinite(float(out["arch_loss"]))
    assert all(not torch.equal(a, b) for a, b in zip(a0, net.arch_parameters()))
    assert {"pfree_normal", "pfree_reduce"} <= set(out)
    arch = space.from_genotype(net.genotype())
    assert space.validate(arch) == arch and (len(a0) == 4) == (cfg == "cifar10_search_pc")
    # what tools/search.py reads: the argmax architecture, cells named as the supernet names them
    from nasbench.evaluators.genotype import GenotypeEvaluator
    found, extras = GenotypeEvaluator(net).best_architecture()
    assert found == arch and set(extras["genotype"]) == set(extras["weights"]) == {"normal", "reduce"}
    assert set(extras["edge_weights"]) == ({"normal", "reduce"} if cfg == "cifar10_search_pc" else set())
