"""Dynamic-width operators, the width supernet, BN recalibration and channel fairness."""
import numpy as np
import pytest
import torch

from nasbench.algorithms import AutoSlim, BCNet, UniformSinglePath
from nasbench.algorithms.base import simulate_fairness
from nasbench.evaluators.accuracy import recalibrate_bn
from nasbench.spaces import ChannelBenchMacroSpace
from nasbench.spaces.mobilenetv2_width import MobileNetV2WidthSpace


@pytest.mark.parametrize("variant,min_bins", [("mobilenet", 0), ("mobilenet", 1), ("resnet", 1)])
def test_subnet_equals_exported_standalone(variant, min_bins):
    torch.manual_seed(0)
    space = ChannelBenchMacroSpace(variant, min_bins=min_bins)
    sup = space.build_supernet()
    for m in sup.modules():  # non-trivial BN statistics and affine parameters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
            m.weight.data.normal_()
            m.bias.data.normal_()
    sup.eval()
    x = torch.randn(2, 3, 32, 32)
    rng = np.random.default_rng(0)
    for _ in range(3):
        arch = space.sample(rng)
        for side in ("left", "right"):
            sup.set_active(arch, side)
            sub = sup.export(arch, side).eval()
            assert sum(p.numel() for p in sub.parameters()) == space.params(arch)
            torch.testing.assert_close(sup(x), sub(x), rtol=1e-4, atol=1e-4)


def test_left_and_right_paths_use_disjoint_weights_when_narrow():
    space = ChannelBenchMacroSpace("mobilenet", min_bins=1)
    sup = space.build_supernet()
    arch = (2,) * 7
    left, right = space.windows(arch, "left"), space.windows(arch, "right")
    for (ls, le), (rs, re), cs in zip(left, right, space.super_channels):
        assert ls == 0 and re == cs and le - ls == re - rs and le <= rs
    x = torch.randn(4, 3, 32, 32)
    sup.set_active(arch, "left")
    sup(x).sum().backward()
    g = sup.net.stem[0].weight.grad
    assert g[:left[0][1]].abs().sum() > 0 and g[right[0][0]:].abs().sum() == 0


def test_recalibration_gives_exact_cumulative_stats():
    space = ChannelBenchMacroSpace("mobilenet")
    sup = space.build_supernet()
    arch = (1, 2, 3, 4, 1, 2, 3)
    sup.set_active(arch, "right")
    batches = [torch.randn(8, 3, 32, 32) for _ in range(3)]
    recalibrate_bn(sup, batches)
    assert not sup.training
    stem_conv, stem_bn = sup.net.stem[0], sup.net.stem[1]
    with torch.no_grad():
        feats = torch.cat([stem_conv(b) for b in batches])
    s, e = space.windows(arch, "right")[0]
    torch.testing.assert_close(stem_bn.running_mean[s:e], feats.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert torch.all(stem_bn.running_mean[:s] == 0)  # outside the window: reset values


def test_bcnet_complementary_rule():
    space = ChannelBenchMacroSpace("mobilenet", min_bins=1)
    alg = BCNet(space, seed=0)
    for _ in range(5):
        (a, sa), (a2, sb) = alg.paths()
        (c, sc), _ = alg.paths()
        assert a == a2 and (sa, sb) == ("left", "right")
        assert c == tuple(5 - w for w in a)  # B + m - c


def test_fairness_bcnet_exact_unilateral_biased():
    space = ChannelBenchMacroSpace("mobilenet", min_bins=1)
    bc = simulate_fairness(BCNet(space, seed=1), 400)
    assert max(bc) == pytest.approx(1.0)
    uni_space = ChannelBenchMacroSpace("mobilenet", min_bins=0)
    auto = simulate_fairness(AutoSlim(uni_space, seed=1), 400)
    single = simulate_fairness(UniformSinglePath(uni_space, seed=1), 800)
    # left-only paths train the first quarter of channels about 4x as often as the last quarter
    assert min(auto) > 3.0 and min(single) > 3.0


def test_fairness_bcnet_v1_close_to_one():
    space = ChannelBenchMacroSpace("resnet", min_bins=0)
    ratios = simulate_fairness(BCNet(space, seed=2), 2000)
    assert max(ratios) < 1.3


def test_mobilenetv2_space_matches_torchvision():
    import torchvision
    space = MobileNetV2WidthSpace(bins=20)
    assert space.num_genes == 25
    full = (20,) * 25
    tv = torchvision.models.mobilenet_v2()
    assert space.params(full) == sum(p.numel() for p in tv.parameters())
    assert space.params(full) == sum(p.numel() for p in space.build(full).parameters())
    v2 = MobileNetV2WidthSpace(bins=20, min_bins=6, width_mult=1.5)
    assert v2.choices(0) == tuple(range(6, 21))
    assert all(s == -(-r * 26 // 20) for s, r in zip(v2.super_channels, v2.ref_channels))
