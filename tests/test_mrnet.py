"""NAS-Bench-MR MultiResolutionNet: the benchmark's params column and forward shapes."""
import random

import pytest
import torch

from nasbench.spaces.mrnet import (PARAMS_NUM_CLASSES, count_flops, SETTING_NUM_CLASSES, MultiResolutionNet,
                                   count_params)
from nasbench.spaces.nas_bench_mr import NASBenchMRSpace

SETTINGS = ["seg", "cls-10c", "cls-50-100", "cls-10-1000", "video"]
EXAMPLE = NASBenchMRSpace().to_setting("32_16-1_1_1_32-3_2_3_2_16_32-1_3_1_1_1_112_48_32-2_4_4_3_4_2_32_64_32_112-128")
SMALL = NASBenchMRSpace().to_setting("8_8-1_1_1_8-1_2_1_1_8_8-1_3_1_1_1_8_8_8-1_4_1_1_1_1_8_8_8_8-8")

torch.set_num_threads(1)
_CACHE = {}


def _count(space, key):
    if key not in _CACHE:
        _CACHE[key] = count_params(space.to_setting(key))
    return _CACHE[key]


@pytest.mark.parametrize("setting", SETTINGS)
def test_params_column_matches(setting, bench_root):
    """fcn head, BN affine counted, 50 classes: exact for a seeded sample of 100 records."""
    from nasbench.benchmarks.nas_bench_mr import load_nas_bench_mr
    bench = load_nas_bench_mr(setting, bench_root)
    keys = sorted(bench)
    sample = random.Random(0).sample(keys, 100)
    hits = 0
    for k in sample:
        rec = bench.query(k)
        c = _count(bench.space, k)
        hits += (c == round(rec["params_m"] * 1e6)) and abs(c / 1e6 - rec["params_m"]) < 5e-7
    assert hits == 100, f"{setting}: {hits}/100 params match"


@pytest.mark.parametrize("setting", ["seg", "video"])
def test_flops_column_matches(setting, bench_root):
    """cls network, 50 classes, 128x128 input, conv MACs + 2*BN elems + classifier bias: exact (G, 9 decimals)."""
    from nasbench.benchmarks.nas_bench_mr import load_nas_bench_mr
    bench = load_nas_bench_mr(setting, bench_root)
    sample = random.Random(1).sample(sorted(bench), 20)
    hits = sum(count_flops(bench.space.to_setting(k)) == round(bench.query(k)["flops_g"] * 1e9) for k in sample)
    assert hits == 20, f"{setting}: {hits}/20 flops match"


def test_count_conventions_differ():
    s = EXAMPLE
    full = count_params(s)
    assert count_params(s, bn=False) < full
    assert count_params(s, num_classes=PARAMS_NUM_CLASSES + 1) == full + 128 + 1  # last=128 -> +w +b
    # meta build equals a real build
    assert full == sum(p.numel() for p in MultiResolutionNet(s, num_classes=PARAMS_NUM_CLASSES).parameters())


@pytest.mark.parametrize("task,shape_in,shape_out", [
    ("cls", (2, 3, 64, 64), (2, 10)),
    ("seg", (2, 3, 64, 64), (2, 19, 16, 16)),
    ("video", (2, 3, 2, 64, 64), (2, 51)),
])
def test_forward_shapes(task, shape_in, shape_out):
    nc = shape_out[1]
    torch.manual_seed(0)
    net = MultiResolutionNet(SMALL, task=task, num_classes=nc).eval()
    with torch.no_grad():
        y = net(torch.randn(*shape_in))
    assert tuple(y.shape) == shape_out and torch.isfinite(y).all()


def test_forward_odd_size_and_backward():
    net = MultiResolutionNet(EXAMPLE, task="cls", num_classes=SETTING_NUM_CLASSES["cls-10c"])
    y = net(torch.randn(2, 3, 72, 72))  # 1/32 branch at 2.25 -> odd sizes are resized
    assert y.shape == (2, 10)
    y.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_bad_task():
    with pytest.raises(ValueError):
        MultiResolutionNet(SMALL, task="det")


def test_space_costs_match_benchmark(bench_root):
    from nasbench.benchmarks import load_benchmark
    b = load_benchmark("nas_bench_mr/cls-10c", bench_root)
    keys = list(b)[:30]
    assert all(b.space.params(k) == round(b.query(k)["params_m"] * 1e6) for k in keys)
    assert all(abs(b.space.flops(k) / 1e9 - b.query(k)["flops_g"]) < 1e-8 for k in keys)
