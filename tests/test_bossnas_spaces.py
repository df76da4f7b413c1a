"""BossNAS spaces (NATS-Bench Ss blocks + slimmable supernet, MBConv) and rating files."""
import functools
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import yaml

import nasbench.spaces  # noqa: F401  (registers the spaces)
from nasbench.algorithms.bossnas_ratings import (RATING_OFFSET, BossRatingEvaluator, RatingLoader, rate_all,
                                                 rate_archs, rating_correlations, rating_report,
                                                 read_block_ratings,
                                                 read_rating_file, write_block_ratings, write_rating_file)
from nasbench.benchmarks.base import TabularBenchmark
from nasbench.errors import ArchError, DataNotFoundError, NasbenchError
from nasbench.metrics.flops import count_macs, count_params
from nasbench.ops.mbconv import MBConvSE
from nasbench.ops.slimmable import SwitchableBatchNorm2d
from nasbench.registry import SPACES
from nasbench.spaces.bossnas_mbconv import BLOCK_SIZES, OP_SPECS, BossNASMBConvSpace
from nasbench.spaces.bossnas_nats import BossNASNATSSpace
from nasbench.spaces.nats_sss import CHANNELS, NATSSizeSpace

REPO = Path(__file__).resolve().parents[1]
P = 32  # small projector width keeps the adapters cheap in tests


@pytest.fixture(scope="module")
def nats10():
    return SPACES.build("bossnas_nats", variant="cifar10", projector_channels=P)


@pytest.fixture(scope="module")
def nats100():
    return SPACES.build("bossnas_nats", variant="cifar100", projector_channels=P)


@pytest.fixture(scope="module")
def mbconv():
    return SPACES.build("bossnas_mbconv")


def _randomize_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)


# ---------------------------------------------------------------------------- NATS-Bench Ss network and cost
@pytest.mark.parametrize("variant,classes", [("cifar10", 10), ("cifar100", 100)])
def test_nats_cost_matches_built_networks(variant, classes):
    space = NATSSizeSpace(variant)
    assert space.num_classes == classes
    rng = np.random.default_rng(0)
    archs = [(8,) * 5, (64,) * 5, (8, 64, 8, 64, 8), (64, 8, 64, 8, 64)] + [space.sample(rng) for _ in range(8)]
    for a in archs:
        with torch.device("meta"):
            net = space.build(a)
        assert count_params(net) == space.params(a), a
        assert count_macs(net, (3, 32, 32)) == space.flops(a), a
    assert space.cost((16, 16, 16, 16, 64)) == (space.flops("16:16:16:16:64"), space.params("16:16:16:16:64"))


def test_nats_cost_table_covers_space():
    space = NATSSizeSpace()
    table = space.cost_table()
    assert len(table) == 32768 and table["8:8:8:8:8"]["params"] == min(v["params"] for v in table.values())
    assert table["64:64:64:64:64"]["flops"] == max(v["flops"] for v in table.values())
    assert table["16:24:32:40:48"] == {"flops": space.flops((16, 24, 32, 40, 48)),
                                       "params": space.params((16, 24, 32, 40, 48))}


def test_nats_standalone_structure_and_forward():
    space = NATSSizeSpace()
    net = space.build((16, 24, 32, 40, 48))
    kinds = [type(m).__name__ for m in net.layers]
    assert kinds == ["NATSCell", "ResBlock", "NATSCell", "ResBlock", "NATSCell"]
    assert isinstance(net.layers[0].edges[3], nn.Identity)  # c1 -> c1: identity skip
    assert isinstance(net.layers[2].edges[3].conv, nn.Conv2d)  # 24 -> 32: conv1x1 + BN
    assert net.layers[2].edges[3].conv.weight.shape == (32, 24, 1, 1)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert space.build((8,) * 5, num_classes=100).classifier.out_features == 100
    with pytest.raises(ArchError, match="variant"):
        NATSSizeSpace("imagenet16")


# ---------------------------------------------------------------------------- BossNAS NATS blocks
def test_block_grouping(nats10, nats100):
    assert isinstance(nats10, BossNASNATSSpace) and isinstance(nats10, NATSSizeSpace)
    assert nats10.block_sizes == (2, 2, 1) and nats100.block_sizes == (2, 1, 2)
    assert [nats10.block_layers(b) for b in range(3)] == [["cell", "res"], ["cell", "res"], ["cell"]]
    assert [nats100.block_layers(b) for b in range(3)] == [["cell", "res"], ["cell"], ["res", "cell"]]
    assert nats10.block_keys("16:24:32:40:48") == ("12", "34", "5")
    assert nats100.block_keys("16:24:32:40:48") == ("12", "3", "45")
    assert [nats10.num_block_paths(b) for b in range(3)] == [64, 64, 8]
    assert [nats100.num_block_paths(b) for b in range(3)] == [64, 8, 64]
    assert list(nats10.block_choices(2)) == [str(i) for i in range(8)]
    assert list(nats10.block_choices(0))[:3] == ["00", "01", "02"]
    assert nats10.benchmark == "nats_sss/cifar10" and nats100.benchmark is None
    assert nats10.encode((16, 24, 32, 40, 48)) == "16:24:32:40:48"  # the benchmark's key format
    custom = BossNASNATSSpace(grouping=[1, 1, 3])
    assert custom.block_keys((8, 16, 24, 32, 40)) == ("0", "1", "234")
    for bad in ([2, 2], [2, 2, 2], [0, 3, 2], "ab"):
        with pytest.raises(ArchError, match="grouping"):
            BossNASNATSSpace(grouping=bad)


def test_block_keys_round_trip(nats10, nats100):
    for space in (nats10, nats100):
        for arch in space:
            keys = space.block_keys(arch)
            assert space.arch_from_block_keys(keys) == arch
            assert "".join(keys) == "".join(str(CHANNELS.index(c)) for c in arch)
            assert tuple(space.block_path(arch, b) for b in range(3)) == \
                tuple(space.decode_block_key(b, k) for b, k in enumerate(keys))


@pytest.mark.parametrize("block,key", [(0, "8"), (0, "123"), (0, "18"), (2, "a"), (2, 5), (1, "٣٤")])
def test_bad_block_keys(nats10, block, key):
    with pytest.raises(ArchError, match="block"):
        nats10.decode_block_key(block, key)
    with pytest.raises(IndexError):
        nats10.block_slice(3)


# ---------------------------------------------------------------------------- BossNAS NATS supernet
def test_switchable_bn_count(nats10):
    sup = nats10.build_supernet()
    sbns = sup.switchable_bns()
    # positions: stem 1 + 3 cells x (5 conv edges + 1 skip conv) + 2 res blocks x 2 convs + last BN = 24
    assert len(sbns) == 24 and len(nats10.build_supernet(with_head=False).switchable_bns()) == 23
    for s in sbns:
        assert isinstance(s, SwitchableBatchNorm2d) and s.widths == CHANNELS
        assert [bn.num_features for bn in s.bns] == list(CHANNELS)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in sup.modules())
    assert n_bn == 24 * 8 + 3 * 8  # + one BN per adapter


def test_adapter_shapes(nats10, nats100):
    for space in (nats10, nats100):
        sup = space.build_supernet()
        assert len(sup.adapters) == 3
        for b in range(3):
            assert len(sup.adapters[b]) == 8
            for w, ad in zip(CHANNELS, sup.adapters[b]):
                assert ad[0].weight.shape == (P, w, 1, 1) and ad[0].bias is None
                assert ad[1].num_features == P
    sup = BossNASNATSSpace(projector_channels=2048).build_supernet()
    assert sup.adapters[1][7][0].weight.shape == (2048, 64, 1, 1)
    # block parameters: block 0 owns the stem; blocks share nothing; adapters belong to their block
    per_block = [{id(p) for p in sup.block_parameters(b)} for b in range(3)]
    assert all(id(p) in per_block[0] for p in sup.stem.parameters())
    assert not (per_block[0] & per_block[1]) and not (per_block[1] & per_block[2])
    assert all(id(p) in per_block[2] for p in sup.adapters[2].parameters())


@pytest.mark.parametrize("variant", ["cifar10", "cifar100"])
def test_forward_each_block_path(variant):
    space = BossNASNATSSpace(variant, projector_channels=P)
    sup = space.build_supernet().eval()
    x = torch.randn(2, 3, 8, 8)  # small maps keep the test fast
    rng = np.random.default_rng(1)
    with torch.no_grad():
        for b in range(3):
            # spatial size: 8 halved by every residual block up to and including this one
            n_res = sum(kind == "res" for bb in range(b + 1) for kind in space.block_layers(bb))
            keys = list(space.block_choices(b))
            for key in keys if len(keys) <= 8 else rng.choice(keys, 12, replace=False):
                inp = x
                for bb, k in enumerate(space.block_keys(space.sample(rng))[:b]):  # a random prefix of any width
                    inp = sup.forward_block(inp, bb, k)
                widths = space.decode_block_key(b, key)
                out = sup.forward_block(inp, b, key)
                assert out.shape == (2, widths[-1], 8 >> n_res, 8 >> n_res), (b, key)
                ad = sup.forward_block(inp, b, widths, adapt=True)
                assert ad.shape == (2, P, 8 >> n_res, 8 >> n_res)
                assert torch.equal(sup.adapt(out, b), ad)
    with pytest.raises(ArchError, match="path"):
        sup.forward_block(x, 0, (8, 12))
    with pytest.raises(ArchError, match="path"):
        sup.forward_block(x, 0, (8,))
    with pytest.raises(ArchError, match="set_active"):
        space.build_supernet().forward_block(x, 0)


def test_supernet_chain_and_export_match(nats10):
    torch.manual_seed(0)
    sup = nats10.build_supernet()
    _randomize_bn(sup)
    x = torch.randn(3, 3, 32, 32)
    for arch in [(16, 24, 32, 40, 48), (8, 8, 8, 8, 8), (64,) * 5, (8, 64, 16, 56, 24)]:
        sup.set_active(arch)
        sup.eval()
        sub = sup.export().eval()
        with torch.no_grad():
            h = x
            for b, key in enumerate(nats10.block_keys(arch)):
                h = sup.forward_block(h, b, key)
            assert torch.allclose(h, sup.forward_features(x))
            assert torch.allclose(sup(x), sub(x), atol=1e-5), arch
        assert sum(p.numel() for p in sub.parameters()) == nats10.params(arch)
        for (name, p) in sub.named_parameters():  # leftmost slices
            if name.endswith("conv.weight") and p.dim() == 4:
                src = sup.get_submodule(name[: -len(".weight")]).weight
                assert torch.equal(p, src[: p.shape[0], : p.shape[1]])


def test_switchable_bn_keeps_widths_apart(nats10):
    sup = nats10.build_supernet().train()
    sup.forward_block(torch.randn(4, 3, 32, 32), 0, (16, 16))
    stem_bn = sup.stem[1]
    touched = [int(bn.num_batches_tracked) for bn in stem_bn.bns]
    assert touched == [0, 1, 0, 0, 0, 0, 0, 0]  # only the 16-channel BN ran


# ---------------------------------------------------------------------------- MBConv
REF_ARCH = [[1, 1], [1, 1, 1, 1], [1, 1, 0, 1], [1, 0, 1, 1], [1, 1, 0, 1]]


def test_mbconv_code_round_trips(mbconv):
    assert isinstance(mbconv, BossNASMBConvSpace) and mbconv.num_genes == 18 and len(mbconv) == 4 ** 18
    assert mbconv.block_sizes == BLOCK_SIZES == (2, 4, 4, 4, 4)
    arch = mbconv.decode("11-1111-1101-1011-1101")
    assert arch == (1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 0, 1)
    assert mbconv.validate(REF_ARCH) == arch and mbconv.encode(REF_ARCH) == "11-1111-1101-1011-1101"
    assert mbconv.block_keys(arch) == ("11", "1111", "1101", "1011", "1101")
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = mbconv.sample(rng)
        key = mbconv.encode(a)
        assert mbconv.decode(key) == a and mbconv.encode(key) == key
        assert [len(p) for p in key.split("-")] == [2, 4, 4, 4, 4]
        assert mbconv.arch_from_block_keys(mbconv.block_keys(a)) == a


@pytest.mark.parametrize("bad,match", [
    ("11-1111-1101-1011", "5 '-'-separated"), ("11-1111-1101-1011-1101-0", "5 '-'-separated"),
    ("11-1111-1101-1011-110", "4 digits"), ("111-111-1101-1011-1101", "2 digits"),
    ("11-1111-1101-1011-1104", "only 4 choices"), ("1a-1111-1101-1011-1101", "digits"),
    ("11 1111 1101 1011 1101", "5 '-'-separated"), (11, "must be a string")])
def test_mbconv_bad_keys(mbconv, bad, match):
    with pytest.raises(ArchError, match=match) as e:
        mbconv.decode(bad)
    assert repr(bad) in str(e.value)


def test_mbconv_bad_archs(mbconv):
    with pytest.raises(ArchError, match=r"gene 5 \(block 1, layer 3\).*allowed values are 0..3"):
        mbconv.validate((0,) * 5 + (4,) + (0,) * 12)
    with pytest.raises(ArchError, match="17 genes"):
        mbconv.validate((0,) * 17)
    with pytest.raises(ArchError, match="lengths"):
        mbconv.validate([[1, 1, 1], [1, 1, 1], [1, 1, 0, 1], [1, 0, 1, 1], [1, 1, 0, 1]])
    with pytest.raises(ArchError, match="shortcut"):
        BossNASMBConvSpace(shortcut="none")
    with pytest.raises(ArchError, match="variant"):
        BossNASMBConvSpace("cifar10")


def _op_params(inp, oup, stride, t, k, projection):
    """Hand count of one MBConvSE layer (convs, BN affine, SE convs with bias, projection shortcut)."""
    mid, rd = inp * t, round(inp / 4)  # every inp * t of this space is a multiple of 8
    n = inp * mid + 2 * mid + mid * k * k + 2 * mid + (mid * rd + rd + rd * mid + mid) + mid * oup + 2 * oup
    if projection and inp != oup:
        n += inp * oup + 2 * oup
    return n


@pytest.mark.parametrize("shortcut", ["projection", "identity"])
def test_mbconv_cost_against_counts_and_formula(shortcut):
    space = BossNASMBConvSpace(shortcut=shortcut)
    shapes = space.layer_shapes()
    assert [s[3] for s in shapes] == [112, 56] + [56] + [28] * 3 + [28] + [14] * 3 + [14] * 4 + [14] + [7] * 3
    base = space.base_params
    # stem conv + BN, MB1 (dw 3x3 + BN, SE 32->8->32, pw 32->16 + BN), last MB6_k3 192->320, head conv + BN, fc
    last = _op_params(192, 320, 1, 6, 3, shortcut == "projection")
    assert base == 27 * 32 + 64 + (9 * 32 + 64 + 32 * 8 + 8 + 8 * 32 + 32 + 32 * 16 + 32) + last + \
        320 * 1280 + 2 * 1280 + 1280 * 1000 + 1000
    rng = np.random.default_rng(0)
    for arch in [(0,) * 18, (3,) * 18, REF_ARCH] + [space.sample(rng) for _ in range(2)]:
        arch = space.validate(arch)
        with torch.device("meta"):
            net = space.build(arch)
        assert count_params(net) == space.params(arch)
        assert count_macs(net, (3, 224, 224)) == space.flops(arch)
        hand = base + sum(_op_params(i, o, s, *OP_SPECS[v], shortcut == "projection")
                          for (i, o, s, _), v in zip(shapes, arch))
        assert space.params(arch) == hand


def test_mbconv_op_equals_timm_block():
    """With the identity shortcut an operator is timm's InvertedResidual with SE from the input width."""
    blocks = pytest.importorskip("timm.models._efficientnet_blocks")
    torch.manual_seed(0)
    for inp, oup, s, (t, k) in [(16, 24, 2, OP_SPECS[0]), (24, 24, 1, OP_SPECS[3]), (80, 112, 1, OP_SPECS[1]),
                                (112, 112, 1, OP_SPECS[2])]:
        mine = MBConvSE(inp, oup, s, t, k, shortcut="identity")
        _randomize_bn(mine)
        se = functools.partial(blocks.SqueezeExcite, rd_channels=round(inp / 4))
        ref = blocks.InvertedResidual(inp, oup, k, s, exp_ratio=t, act_layer=nn.SiLU, se_layer=se)
        ref.load_state_dict(mine.state_dict(), strict=True)
        x = torch.randn(2, inp, 16, 16)
        with torch.no_grad():
            assert torch.allclose(mine.eval()(x), ref.eval()(x), atol=1e-5)


def test_mbconv_supernet(mbconv):
    sup = mbconv.build_supernet()
    assert len(sup.blocks) == 18 and all(b.values == (0, 1, 2, 3) for b in sup.blocks)
    first = sup.blocks[0]  # 16 -> 24, stride 2: the four candidates share one projection
    assert first.op(0).downsample is not None and all(first.op(v).downsample is first.op(0).downsample
                                                     for v in range(4))
    assert sup.blocks[1].op(0).downsample is None  # 24 -> 24, stride 1: identity shortcut
    _randomize_bn(sup)
    sup.eval()
    x = torch.randn(2, 3, 32, 32)
    arch = mbconv.validate(REF_ARCH)
    sup.set_active(arch)
    with torch.no_grad():
        y = sup(x)
        assert torch.allclose(sup.export(arch).eval()(x), y, atol=1e-5)
        h = x
        widths = []
        for b, key in enumerate(mbconv.block_keys(arch)):
            h = sup.forward_block(h, b, key)
            widths.append(h.shape[1])
        assert widths == [24, 40, 80, 112, 192]
        assert torch.allclose(sup.forward_last(h), y, atol=1e-5)
        other = sup.forward_block(sup.forward_block(x, 0, (3, 2)), 1, "0123")
        assert other.shape == (2, 40, 4, 4) and sup.active[0] == arch  # forward_block leaves the active arch
    with pytest.raises(ArchError, match="path"):
        sup.forward_block(x, 0, (4, 0))
    n0 = sum(p.numel() for p in sup.block_parameters(0))
    assert n0 == sum(p.numel() for p in itertools.chain(sup.net.stem.parameters(), sup.net.features[0].parameters(),
                                                        *[b.parameters() for b in sup.blocks[:2]],
                                                        sup.projectors[0].parameters(), sup.predictors[0].parameters()))


# ---------------------------------------------------------------------------- rating files
REF_STYLE = "- !!python/tuple\n  - '74'\n  - -3.169246506690979\n- !!python/tuple\n  - '07'\n  - -3.1\n"


def test_reference_style_file_reads(tmp_path):
    p = tmp_path / "path_rank_0.yml"
    p.write_text(REF_STYLE)
    assert read_rating_file(p) == {"74": -3.169246506690979, "07": -3.1}
    p.write_text("- ['3', 1.5]\n- ['1', 2]\n")
    assert read_rating_file(p) == {"3": 1.5, "1": 2.0}


@pytest.mark.parametrize("payload", [
    "- !!python/object/apply:os.system ['touch {marker}']\n",
    "- !!python/tuple\n  - !!python/object/apply:os.system ['touch {marker}']\n  - 1.0\n",
    "- !!python/tuple ['00', !!python/object/apply:os.system ['touch {marker}']]\n",
    "!!python/object/new:os.system ['touch {marker}']\n",
    "- !!python/name:os.system\n"])
def test_unsafe_rating_file_refused(tmp_path, payload):
    marker = tmp_path / "pwned"
    p = tmp_path / "path_rank_1.yml"
    p.write_text(payload.format(marker=marker))
    with pytest.raises(NasbenchError, match="refused") as e:
        read_rating_file(p)
    assert str(p) in str(e.value)
    assert not marker.exists()


def test_rating_loader_is_safe_loader():
    assert issubclass(RatingLoader, yaml.SafeLoader)
    assert yaml.load("!!python/tuple [a, 1]", Loader=RatingLoader) == ("a", 1)


def test_rating_file_errors(tmp_path):
    p = tmp_path / "r.yml"
    with pytest.raises(DataNotFoundError):
        read_rating_file(p)
    for text, match in [("- !!python/tuple [12, 1.0]\n", "quoted"),
                        ("- [16:16:16:16:16, 1.0]\n", "quoted"),  # YAML 1.1 base-60 int
                        ("- ['1', .nan]\n", "finite"), ("- ['1', 'x']\n", "finite"),
                        ("- ['1', 1.0]\n- ['1', 2.0]\n", "more than once"), ("- ['1', 1.0, 2]\n", "pair"),
                        ("42\n", "list"), ("- [\n", "YAML")]:
        p.write_text(text)
        with pytest.raises(NasbenchError, match=match):
            read_rating_file(p)
    with pytest.raises(NasbenchError, match="finite"):
        write_rating_file(p, {"1": math.inf})
    with pytest.raises(NasbenchError, match="quoted"):
        write_rating_file(p, [(1, 0.5)])


def test_sexagesimal_safe_quoting_round_trip(tmp_path):
    ratings = {"16:16:16:16:16": -1.25, "8:8:8:8:8": 0.5, "07": -3.0, "1e3": 2.0, "true": 0.1,
               "64:64:64:64:64": 1e-17, "it's": -0.75}
    p = write_rating_file(tmp_path / "x.yml", ratings)
    text = p.read_text()
    assert "'16:16:16:16:16'" in text and "'07'" in text and "'it''s'" in text
    assert read_rating_file(p) == ratings
    assert list(read_rating_file(p)) == sorted(ratings, key=ratings.get)  # ascending loss
    plain = yaml.load(text, Loader=RatingLoader)
    assert all(isinstance(k, str) for k, _ in plain)


def test_write_matches_reference_format(tmp_path):
    p = write_rating_file(tmp_path / "path_rank_0.yml", [("07", -3.1), ("74", -3.169246506690979)])
    assert p.read_text() == REF_STYLE
    paths = write_block_ratings(tmp_path / "d", [{"0": 1.0}, {"1": 2.0, "0": -1.0}])
    assert [q.name for q in paths] == ["path_rank_0.yml", "path_rank_1.yml"]
    assert read_block_ratings(tmp_path / "d", 2) == [{"0": 1.0}, {"0": -1.0, "1": 2.0}]


# ---------------------------------------------------------------------------- rating architectures
def _random_tables(space, seed=0):
    rng = np.random.default_rng(seed)
    return [{k: float(rng.uniform(-4, 4)) for k in space.block_choices(b)} for b in range(space.num_blocks)]


@pytest.mark.parametrize("grouping", [None, [1, 1, 3], [5]])
def test_rate_all_matches_brute_force(tmp_path, grouping):
    space = BossNASNATSSpace(grouping=grouping)
    tables = _random_tables(space)
    write_block_ratings(tmp_path, tables)
    tables = read_block_ratings(tmp_path, space.num_blocks)
    ratings = rate_all(space, tables)
    assert len(ratings) == 32768
    sizes = space.block_sizes
    for arch in itertools.islice(space, 0, None, 13 if grouping else 1):
        digits = "".join(str(CHANNELS.index(c)) for c in arch)
        keys = [digits[sum(sizes[:b]):sum(sizes[:b + 1])] for b in range(len(sizes))]
        brute = sum(tables[b][k] + RATING_OFFSET for b, k in enumerate(keys))
        assert ratings[":".join(map(str, arch))] == pytest.approx(brute, abs=1e-12)
    some = [space.sample(np.random.default_rng(3)) for _ in range(5)]
    assert rate_archs(space, tables, some) == [ratings[space.encode(a)] for a in some]
    assert rate_archs(space, tables, some, decimals=4) == [round(ratings[space.encode(a)], 4) for a in some]


def test_rate_all_errors(nats10, mbconv):
    tables = _random_tables(nats10)
    del tables[1]["35"]
    with pytest.raises(NasbenchError, match="'35' is missing"):
        rate_all(nats10, tables)
    tables = _random_tables(nats10)
    tables[2]["9"] = 0.0
    with pytest.raises(NasbenchError, match="block 2"):
        rate_all(nats10, tables)
    with pytest.raises(NasbenchError, match="3 blocks"):
        rate_all(nats10, _random_tables(nats10)[:2])
    mb_tables = _random_tables(mbconv)
    with pytest.raises(NasbenchError, match="too many"):
        rate_all(mbconv, mb_tables)
    arch = mbconv.validate(REF_ARCH)
    expect = sum(mb_tables[b][k] + 4 for b, k in enumerate(("11", "1111", "1101", "1011", "1101")))
    assert rate_archs(mbconv, mb_tables, [arch])[0] == pytest.approx(expect)


def test_rating_correlations_and_evaluator(nats10):
    tables = _random_tables(nats10, seed=5)
    ratings = rate_all(nats10, tables)
    records = {k: {"acc": 100 - r, "flops": None} for k, r in ratings.items()}
    bench = TabularBenchmark("toy_nats", NATSSizeSpace(), records, metric="acc")
    c = rating_correlations(ratings, bench)
    assert c["n"] == 32768 and c["kendall_tau"] == pytest.approx(1.0) and c["pearson"] == pytest.approx(1.0)
    flipped = {k: -r for k, r in ratings.items()}
    assert rating_correlations(flipped, bench)["spearman"] == pytest.approx(-1.0)
    with pytest.raises(NasbenchError, match="no rating"):
        rating_correlations(dict(list(ratings.items())[:-1]), bench)
    ev = BossRatingEvaluator(nats10, tables)
    out = ev.evaluate([(16, 24, 32, 40, 48)])[0]
    assert out["rating"] == pytest.approx(ratings["16:24:32:40:48"]) and out["score"] == -out["rating"]
    assert out["flops"] == nats10.flops((16, 24, 32, 40, 48))
    rep = rating_report(nats10, tables, bench)
    assert rep["correlations"]["kendall_tau"] == pytest.approx(1.0) and rep["num_archs"] == 32768
    assert rep["best"]["rank"] == 1 and rep["best"]["arch"] == min(ratings, key=ratings.get)
    assert set(rep["size_proxies"]) == {"params", "flops"} and rep["size_proxies"]["params"]["n"] == 32768


def test_rating_history_rates_with_the_blocks_rated_so_far(nats10):
    """After each rating epoch: blocks rated so far, each block's latest table, unrated blocks tie."""
    from nasbench.algorithms.bossnas_ratings import rating_history
    from nasbench.metrics.ranking import rank_correlations
    final = _random_tables(nats10, seed=5)
    early = _random_tables(nats10, seed=6)
    ratings = rate_all(nats10, final)
    bench = TabularBenchmark("toy_nats", NATSSizeSpace(), {k: {"acc": 100 - r, "flops": None}
                                                           for k, r in ratings.items()}, metric="acc")
    history = [{"epoch": 0, "block": 0, "table": early[0]}, {"epoch": 1, "block": 0, "table": final[0]},
               {"epoch": 2, "block": 1, "table": final[1]}, {"epoch": 3, "block": 2, "table": final[2]}]
    hist = rating_history(nats10, history, bench)
    assert [(h["epoch"], h["block"], h["blocks_rated"]) for h in hist] == [(0, 0, 1), (1, 0, 1), (2, 1, 2), (3, 2, 3)]
    keys = list(bench)
    acc = [bench.query(k)["acc"] for k in keys]
    by_block0 = [-early[0][nats10.block_keys(k)[0]] for k in keys]  # the first entry: block 0's early table only
    assert hist[0]["kendall_tau"] == pytest.approx(rank_correlations(by_block0, acc)["kendall_tau"])
    assert hist[-1]["kendall_tau"] == pytest.approx(1.0)  # every block at its final table: the final rating
    assert hist[0]["kendall_tau"] < hist[1]["kendall_tau"] < hist[2]["kendall_tau"] < hist[3]["kendall_tau"]
    with pytest.raises(NasbenchError, match="entry 1"):
        rating_history(nats10, [history[0], {"epoch": 1, "block": 2, "table": final[0]}], bench)


def test_ratings_cover_the_nats_benchmark(bench_of, bench_root, nats10, tmp_path, capsys):
    bench = bench_of("nats_sss/cifar10")
    tables = _random_tables(nats10)
    ratings = rate_all(nats10, tables)
    assert set(ratings) == set(bench)
    c = rating_correlations(ratings, bench)
    assert c["n"] == 32768 and abs(c["kendall_tau"]) < 0.05  # random tables: no correlation
    # the command-line tool on rating files written here
    import importlib.util
    spec = importlib.util.spec_from_file_location("bossnas_rating_tool", REPO / "tools" / "bossnas_rating.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    write_block_ratings(tmp_path / "r", tables)
    tool.main(["--ratings", str(tmp_path / "r"), "--root", str(bench_root), "--out", str(tmp_path / "rep.json")])
    out = capsys.readouterr().out
    assert "32768 architectures" in out and "params (size proxy)" in out
    rep = json.loads((tmp_path / "rep.json").read_text())
    assert rep["correlations"]["kendall_tau"] == pytest.approx(c["kendall_tau"])
