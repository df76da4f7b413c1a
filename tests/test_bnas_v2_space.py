"""BNAS-v2 search space: gene encoding, genotypes, string keys and the broad retraining network.

Reference: arXiv 2009.08886 and GitHub zixiangding/BNASv2 (``BNASv2CLR/model_b.py``,
``genotypes.py``); METHODS.md section 4.
"""
import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from nasbench.errors import ArchError, ConfigError
from nasbench.metrics.flops import count_macs, count_params
from nasbench.ops.darts import FactorizedReduce, ReLUConvBN, make_op
from nasbench.registry import SPACES
from nasbench.spaces import build_space
from nasbench.spaces.bnas_v2 import (BNASV2_CLR_V1, CONCAT, OPS7, PAIRS, BNASv2Space, BroadNetwork, Genotype,
                                     broad_plan, gene_index)

C_SMALL = 8


@pytest.fixture(scope="module")
def space():
    return BNASv2Space(init_channels=C_SMALL)


def _archs(space, n, seed=0):
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def _uniform(space, conv_op, enh_op, pair=0):
    """Architecture whose every edge of the conv / enhancement cell carries one op (pair index ``pair``)."""
    arch = []
    for cell, op in ((0, conv_op), (1, enh_op)):
        for n in range(4):
            arch += [min(pair, len(PAIRS[n]) - 1), OPS7.index(op), OPS7.index(op)]
    return tuple(arch)


def rcb(c_in, c_out):
    """Parameters of a 1x1 ReLUConvBN (conv + BN affine); a FactorizedReduce has the same count."""
    return c_in * c_out + 2 * c_out


# -- genes, registry --------------------------------------------------------------------
def test_genes_and_registry():
    space = build_space({"type": "bnas_v2", "init_channels": 8}, num_classes=10)
    assert isinstance(space, BNASv2Space) and "bnas_v2" in SPACES
    assert space.family == "darts" and space.benchmark is None and space.num_classes == 10
    assert space.num_genes == 24
    sizes = [len(space.choices(i)) for i in range(24)]
    assert sizes == [1, 7, 7, 3, 7, 7, 6, 7, 7, 10, 7, 7] * 2
    assert len(space) == (1 * 3 * 6 * 10 * 7 ** 8) ** 2
    assert gene_index(1, 3, 2) == 23 and gene_index(0, 2, 0) == 6
    with pytest.raises(IndexError):
        space.choices(24)


def test_sample_mutate_crossover_are_legal(space):
    rng = np.random.default_rng(1)
    a, b = space.sample(rng), space.sample(rng)
    for child in (space.mutate(a, 0.5, rng), space.crossover(a, b, rng), space.mutate(b, 1.0, rng)):
        assert space.validate(child) == child
        space.genotype(child)


# -- round trips ------------------------------------------------------------------------
def test_round_trips(space):
    for arch in _archs(space, 200, seed=0):
        g = space.genotype(arch)
        assert list(g.normal_concat) == list(CONCAT) == list(g.reduce_concat)
        for cell in (g.normal, g.reduce):
            assert len(cell) == 8
            for n in range(4):
                (o1, j1), (o2, j2) = cell[2 * n: 2 * n + 2]
                assert 0 <= j1 < j2 < n + 2 and o1 in OPS7 and o2 in OPS7
        assert space.from_genotype(g) == arch
        assert space.from_genotype(g._asdict()) == arch
        assert space.from_genotype(json.loads(json.dumps(g))) == arch  # the JSON (list-of-4) form
        key = space.encode(arch)
        assert space.decode(key) == arch and space.validate(key) == arch
        assert space.decode("-".join(map(str, arch))) == arch  # the plain gene form


def test_reference_genotype_is_sorted_and_read(space):
    arch = space.from_genotype(BNASV2_CLR_V1)
    g = space.genotype(arch)
    for mine, ref in ((g.normal, BNASV2_CLR_V1.normal), (g.reduce, BNASV2_CLR_V1.reduce)):
        for n in range(4):
            assert mine[2 * n: 2 * n + 2] == sorted(ref[2 * n: 2 * n + 2], key=lambda e: e[1])
    assert arch[:3] == (0, OPS7.index("sep_conv_3x3"), OPS7.index("sep_conv_3x3"))
    # reference-style concat=range(2, 6), swapped cells in the key, whitespace, swapped edges
    assert space.from_genotype(BNASV2_CLR_V1._replace(normal_concat=range(2, 6))) == arch
    assert isinstance(g, Genotype) and space.from_genotype(Genotype(*BNASV2_CLR_V1)) == arch
    assert space.from_genotype((BNASV2_CLR_V1.normal, BNASV2_CLR_V1.reduce)) == arch
    conv, enh = space.encode(arch).split(";")
    first, rest = conv.split(",", 1)
    e1, e2 = first[len("conv="):].split("+")
    assert space.decode(f" {enh} ;conv={e2}+{e1},{rest}") == arch


# -- errors -----------------------------------------------------------------------------
def test_arch_errors(space):
    ok = _uniform(space, "sep_conv_3x3", "avg_pool_3x3")
    bad = list(ok)
    bad[0] = 1  # node 0 has a single pair
    with pytest.raises(ArchError, match=r"gene 0 \(conv cell, node 0, input pair\).*allowed: 0=\(0, 1\)"):
        space.validate(bad)
    bad = list(ok)
    bad[gene_index(1, 3, 2)] = 7
    with pytest.raises(ArchError, match=r"gene 23 \(enhance cell, node 3, op of the edge from the second"):
        space.validate(bad)
    with pytest.raises(ArchError, match="23 genes, expected 24"):
        space.validate(ok[:-1])
    with pytest.raises(ArchError, match="not a sequence of ints"):
        space.validate(["a"] * 24)


def _genotype_with(cell, node, edges):
    g = BNASV2_CLR_V1
    lst = list(g.normal if cell == 0 else g.reduce)
    lst[2 * node: 2 * node + 2] = edges
    return g._replace(normal=lst) if cell == 0 else g._replace(reduce=lst)


@pytest.mark.parametrize("cell,node,edges,match", [
    (0, 2, [("sep_conv_3x3", 1), ("skip_connect", 1)], r"convolution cell.*node 2: both edges read state 1"),
    (1, 1, [("none", 0), ("skip_connect", 1)], r"enhancement cell.*node 1: op 'none' is not allowed"),
    (0, 0, [("conv_7x1_1x7", 0), ("skip_connect", 1)], r"convolution cell.*node 0: unknown op 'conv_7x1_1x7'"),
    (1, 3, [("max_pool_3x3", 0), ("skip_connect", 5)], r"enhancement cell.*node 3: input state 5 is out of range"),
    (0, 1, [("max_pool_3x3", -1), ("skip_connect", 1)], r"node 1: input state -1 is out of range"),
    (0, 1, [("max_pool_3x3", "0"), ("skip_connect", 1)], r"node 1: input '0' of edge"),
    (0, 1, [("max_pool_3x3",), ("skip_connect", 1)], r"node 1: edge \('max_pool_3x3',\) is not an"),
])
def test_genotype_errors(space, cell, node, edges, match):
    with pytest.raises(ArchError, match=match):
        space.from_genotype(_genotype_with(cell, node, edges))


def test_genotype_structure_errors(space):
    g = BNASV2_CLR_V1
    with pytest.raises(ArchError, match="has 7 edges, expected 8"):
        space.from_genotype(g._replace(reduce=g.reduce[:7]))
    with pytest.raises(ArchError, match=r"concat \[2, 3, 4\] must be \[2, 3, 4, 5\]"):
        space.from_genotype(g._replace(normal_concat=[2, 3, 4]))
    with pytest.raises(ArchError, match="lacks \\['reduce'\\]"):
        space.from_genotype({"normal": g.normal})
    with pytest.raises(ArchError, match="cannot read a genotype"):
        space.from_genotype(42)


@pytest.mark.parametrize("key,match", [
    ("", r"part '' must be 'conv=\.\.\.'"),
    ("garbage", r"part 'garbage' must be"),
    ("conv=a~0+b~1,c~0+d~1,e~0+f~1;enhance=x", r"conv cell has 3 nodes, expected 4"),
    ("conv=skip_connect~0,x,y,z;enhance=", r"conv cell node 0 'skip_connect~0' must be 'op~j\+op~k'"),
    ("conv=skip_connect~0+skip_connect~1;enhance=a", r"conv cell has 1 nodes, expected 4"),
    ("conv=sep_conv_3x3~0+skip_connect:1,a,b,c;enhance=a", r"edge 'skip_connect:1' must be 'op_name~input_state'"),
    ("1-2-3", r"has 3 genes, expected 24"),
])
def test_decode_errors(space, key, match):
    with pytest.raises(ArchError, match=match):
        space.decode(key)


def test_decode_semantic_errors_name_cell_and_node(space):
    key = space.encode(_uniform(space, "sep_conv_3x3", "avg_pool_3x3"))
    with pytest.raises(ArchError, match=r"enhancement cell \(Genotype.reduce\), node 2: both edges read state 0"):
        space.decode(key.replace("enhance=" + key.split("enhance=")[1],
                                 "enhance=avg_pool_3x3~0+avg_pool_3x3~1,avg_pool_3x3~0+avg_pool_3x3~1,"
                                 "avg_pool_3x3~0+avg_pool_3x3~0,avg_pool_3x3~0+avg_pool_3x3~1"))
    with pytest.raises(ArchError, match=r"convolution cell.*node 0: op 'none'"):
        space.decode(key.replace("conv=sep_conv_3x3~0", "conv=none~0"))
    conv = key.split(";")[0]
    with pytest.raises(ArchError, match="lacks the enhance cell"):
        space.decode(conv)
    with pytest.raises(ArchError, match="cell 'conv' is given twice"):
        space.decode(f"{conv};{conv}")
    with pytest.raises(ArchError, match=r"convolution cell.*node 1: unknown op 'sep_conv_7x7'"):
        space.decode(key.replace("conv=sep_conv_3x3~0+sep_conv_3x3~1,sep_conv_3x3~0",
                                 "conv=sep_conv_3x3~0+sep_conv_3x3~1,sep_conv_7x7~0"))
    with pytest.raises(ArchError, match="must be a string"):
        space.decode(3)


def test_bad_settings():
    with pytest.raises(ConfigError, match="pool_time=1"):
        BNASv2Space(pool_time=1)
    with pytest.raises(ConfigError, match="even"):
        BNASv2Space(init_channels=7)
    with pytest.raises(ConfigError, match="en_layers=0"):
        BNASv2Space(en_layers=0)
    with pytest.raises(ConfigError, match="input_size=30"):
        BNASv2Space(input_size=30)


# -- the network --------------------------------------------------------------------------
def test_channel_plan_cifar():
    """The reference's bookkeeping at C=48, layers=6, en_layers=2 (worked out by hand from model_b.py)."""
    p = broad_plan(48, 6, 2, 2)
    assert p.pool_layers == [2, 5]
    assert p.conv_cells == [(144, 144, 48, False, False), (144, 192, 48, False, False),
                            (192, 192, 96, True, False), (192, 384, 96, False, True),
                            (384, 384, 96, False, False), (384, 384, 192, True, False)]
    assert p.gap_taps == [(1, 192, 48, 2), (4, 384, 96, 1)]
    assert p.en_taps == [(2, 384, 96, 1), (5, 768, 768, 0)]
    assert p.en_cells == [(96, 768, 192), (768, 768, 192)]
    assert p.en_gap_taps == [(768, 192), (768, 768)]
    assert p.C_final == 48 + 96 + 192 + 768 == 1104


def test_forward_shapes_and_structure(space):
    x = torch.randn(2, 3, 32, 32)
    for arch in _archs(space, 3, seed=2) + [space.from_genotype(BNASV2_CLR_V1)]:
        net = space.build(arch).eval()
        with torch.no_grad():
            assert net(x).shape == (2, 10)
    assert space.build(arch, num_classes=7).eval()(x).shape == (2, 7)
    # preprocess0 is a FactorizedReduce exactly after a reduction cell; stride-2 skips are FactorizedReduce
    net = space.build(_uniform(space, "skip_connect", "skip_connect"))
    kinds = [type(c.preprocess0) for c in net.conv_cells]
    assert kinds == [ReLUConvBN, ReLUConvBN, ReLUConvBN, FactorizedReduce, ReLUConvBN, ReLUConvBN]
    assert all(isinstance(c.preprocess0, ReLUConvBN) for c in net.en_cells)
    for i, cell in enumerate(net.conv_cells):
        for op, j in zip(cell.ops, cell.inputs):
            assert isinstance(op, FactorizedReduce if i in (2, 5) and j < 2 else nn.Identity)


def test_more_reductions_follow_the_imagenet_rule():
    """pool_time=3: the first enhancement cell reads concat(E0, E1) and E2 (reference NetworkImageNet_b5)."""
    net = BroadNetwork(BNASV2_CLR_V1, C=8, layers=6, en_layers=1, pool_time=3).eval()
    p = net.plan
    assert p.pool_layers == [1, 3, 5] and [t[2] for t in p.en_taps] == [16, 32, 256]
    assert p.en_cells[0] == (16 + 32, 256, 64) and net.classifier.in_features == p.C_final == 8 + 16 + 32 + 256
    with torch.no_grad():
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_drop_path_and_backward(space):
    torch.manual_seed(0)
    arch = _uniform(space, "sep_conv_3x3", "skip_connect")
    net = space.build(arch).train()
    x = torch.randn(2, 3, 32, 32)
    net.drop_path_prob = 0.0
    assert torch.equal(net(x), net(x))
    net.drop_path_prob = 0.5
    a, b = net(x), net(x)
    assert not torch.allclose(a, b)
    a.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.eval()
    assert torch.equal(net(x), net(x))  # no drop path at evaluation
    # identity skips are never dropped: an all-skip enhancement cell of equal inputs is deterministic
    cell = net.en_cells[1].train()
    s = torch.randn(2, 128, 8, 8)
    assert torch.equal(cell(s, s, 0.9), cell(s, s, 0.9))


def test_params_hand_derived_all_pool():
    """Pool-only cells have no op parameters: the count is the skeleton's, derived by hand (C=8)."""
    space = BNASv2Space(init_channels=8)
    arch = _uniform(space, "max_pool_3x3", "avg_pool_3x3")
    stem = 3 * 24 * 9 + 2 * 24
    conv_cells = (2 * rcb(24, 8) + rcb(24, 8) + rcb(32, 8) + 2 * rcb(32, 16)  # cells 0, 1, 2
                  + rcb(32, 16) + rcb(64, 16) + 2 * rcb(64, 16) + 2 * rcb(64, 32))  # 3 (FR), 4, 5
    gap = rcb(32, 8) + 2 * rcb(8, 8) + rcb(64, 16) + rcb(16, 16)
    en_taps = rcb(64, 16) + rcb(16, 16) + rcb(128, 128)
    en_cells = rcb(16, 32) + rcb(128, 32) + 2 * rcb(128, 32)
    en_gap = rcb(128, 32) + rcb(128, 128)
    classifier = (8 + 16 + 32 + 128) * 10 + 10
    expected = stem + conv_cells + gap + en_taps + en_cells + en_gap + classifier
    assert space.params(arch) == count_params(space.build(arch)) == expected
    # one conv-cell edge max_pool -> sep_conv_3x3 adds a SepConv in each of the 6 conv cells
    sep = lambda c: 2 * (c * 9 + c * c + 2 * c)  # noqa: E731  two (dw 3x3, pw 1x1, BN) blocks
    swapped = list(arch)
    swapped[gene_index(0, 2, 1)] = OPS7.index("sep_conv_3x3")
    assert space.params(swapped) - space.params(arch) == sum(sep(c) for c in (8, 8, 16, 16, 16, 32))
    # and an enhancement-cell edge -> dil_conv_5x5 adds one DilConv in each of the 2 enhancement cells (C=32)
    swapped[gene_index(1, 0, 2)] = OPS7.index("dil_conv_5x5")
    assert space.params(swapped) - space.params(arch) == (sum(sep(c) for c in (8, 8, 16, 16, 16, 32))
                                                           + 2 * (32 * 25 + 32 * 32 + 2 * 32))


def test_reference_genotype_params_at_c48():
    """BNASv2_CLR_v1 at C=48, layers=6, en_layers=2 (train_b.py defaults), counted on the meta device.

    No published parameter count for this genotype was found (the repo README has none), so the
    test checks additivity instead: params = pool-only skeleton + the parameters of each edge op
    at its cell's width. (This implementation counts 3,338,074 params and 504,273,696 MACs at
    32x32, equal to a transcription of the reference model_b.py.)
    """
    space = BNASv2Space()  # C=48
    arch = space.from_genotype(BNASV2_CLR_V1)
    base = space.params(_uniform(space, "max_pool_3x3", "max_pool_3x3"))
    with torch.device("meta"):
        ops = sum(count_params(make_op(name, c, 2 if red and j < 2 else 1, True))
                  for c, red in ((48, False), (48, False), (96, True), (96, False), (96, False), (192, True))
                  for name, j in BNASV2_CLR_V1.normal)
        ops += 2 * sum(count_params(make_op(name, 192, 1, True)) for name, _ in BNASV2_CLR_V1.reduce)
    assert space.params(arch) == base + ops
    assert 3.0e6 < space.params(arch) < 3.7e6  # a DARTS-sized CIFAR model


def test_flops(space):
    arch = _archs(space, 1, seed=5)[0]
    net = space.build(arch)  # a real (CPU) network, counted independently of the space's meta-device count
    assert space.flops(arch) == count_macs(net, (3, 32, 32))
    assert arch in space._cost_cache and space.flops(list(arch)) == space.flops(space.encode(arch))
    pools = _uniform(space, "max_pool_3x3", "avg_pool_3x3")
    big = _uniform(space, "sep_conv_5x5", "sep_conv_5x5")
    assert space.flops(big) > space.flops(arch) > space.flops(pools)
    # halving the image quarters every spatial cost (only the classifier's MACs stay)
    small = BNASv2Space(init_channels=C_SMALL, input_size=16)
    lin = broad_plan(C_SMALL, 6, 2).C_final * 10
    assert 4 * (small.flops(big) - lin) == space.flops(big) - lin
