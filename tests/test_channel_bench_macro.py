"""Channel-Bench-Macro: standalone networks reproduce the benchmark's params and FLOPs exactly."""
import numpy as np
import pytest
import torch

from nasbench.benchmarks import load_benchmark
from nasbench.errors import ArchError, DataNotFoundError, NasbenchError
from nasbench.metrics.flops import count_macs, count_params
from nasbench.spaces import ChannelBenchMacroSpace

VARIANTS = ["mobilenet", "resnet"]


def _counted(space, key):
    """(params, MACs) of the built standalone network, counted on the meta device."""
    with torch.device("meta"):
        net = space.build(key)
    return count_params(net), count_macs(net, (3, 32, 32))


def _check(variant, bench_root, keys, build):
    b = load_benchmark(f"channel_bench_macro/{variant}", bench_root)
    mism = []
    for k in keys:
        q = b.query(k)
        got = _counted(b.space, k) if build else (b.space.params(k), b.space.flops(k))
        if got != (q["params"], q["flops"]):
            mism.append((k, got, q["params"], q["flops"]))
    assert not mism, mism[:5]


@pytest.mark.parametrize("variant", VARIANTS)
def test_analytic_cost_matches_all(variant, bench_root):
    b = load_benchmark(f"channel_bench_macro/{variant}", bench_root)
    _check(variant, bench_root, list(b), build=False)


@pytest.mark.parametrize("variant", VARIANTS)
def test_built_networks_match_sample(variant, bench_root):
    keys = list(load_benchmark(f"channel_bench_macro/{variant}", bench_root))
    rng = np.random.default_rng(0)
    sample = [keys[i] for i in rng.choice(len(keys), 500, replace=False)]
    _check(variant, bench_root, sample, build=True)


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_built_networks_match_all(variant, bench_root):
    _check(variant, bench_root, list(load_benchmark(f"channel_bench_macro/{variant}", bench_root)), build=True)


def test_hook_counter_agrees_with_torch_flop_counter():
    from torch.utils.flop_counter import FlopCounterMode
    space = ChannelBenchMacroSpace("mobilenet")
    net = space.build("1234321")
    with FlopCounterMode(display=False) as fc:
        net(torch.zeros(1, 3, 32, 32))
    assert count_macs(net) == fc.get_total_flops() // 2 == space.flops("1234321")


def test_benchmark_interface(bench_root):
    b = load_benchmark("channel_bench_macro/mobilenet", bench_root)
    keys = list(b)
    assert len(keys) == 16384 == len(b.space) and len(set(keys)) == 16384
    q = b.query("1111111")
    assert set(q) >= {"mean_acc", "std", "acc", "params", "flops"}
    assert q["mean_acc"] == pytest.approx(np.mean(q["acc"]))
    assert b.query((1, 1, 1, 1, 1, 1, 1)) == q
    best_key, best = b.best()
    assert b.rank(best_key) == 1
    accs = sorted((b.query(k)["mean_acc"] for k in keys), reverse=True)
    assert b.rank("1111111") == 1 + sum(a > q["mean_acc"] for a in accs)
    k, r = b.best(max_flops=50e6)
    assert r["flops"] <= 50e6
    assert all(b.query(x)["mean_acc"] <= r["mean_acc"] for x in keys if b.query(x)["flops"] <= 50e6)
    assert b.regret(k, 50e6) == 0.0
    assert b.regret("1111111", 50e6) == pytest.approx(r["mean_acc"] - q["mean_acc"])
    ev = b.evaluate(["4432214"])[0]
    assert ev["score"] == ev["mean_acc"] and ev["flops"] == b.space.flops("4432214")


@pytest.mark.parametrize("bad", ["443221", "44322145", "4432215", "0432214", "44a2214"])
def test_bad_keys(bad):
    with pytest.raises(ArchError) as e:
        ChannelBenchMacroSpace("mobilenet").decode(bad)
    assert bad in str(e.value)


def test_tuple_validation_names_position():
    with pytest.raises(ArchError, match="gene 3"):
        ChannelBenchMacroSpace("resnet").validate((1, 2, 3, 5, 1, 1, 1))


def test_missing_benchmark_is_clear(tmp_path, monkeypatch):
    monkeypatch.delenv("NASBENCH_MIRROR", raising=False)
    monkeypatch.setattr("nasbench.data.files._download", lambda url, dst: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(DataNotFoundError) as e:
        load_benchmark("channel_bench_macro/resnet", tmp_path)
    assert "Results_ResNet.json" in str(e.value) and str(tmp_path) in str(e.value)


def test_mirror_fills_root(tmp_path, monkeypatch, mirror):
    monkeypatch.setenv("NASBENCH_MIRROR", str(mirror))
    b = load_benchmark("channel_bench_macro/mobilenet", tmp_path)
    assert (tmp_path / "channel_bench_macro" / "Results_MobileNet.json").is_file() and len(b) == 16384


def test_unknown_benchmark():
    with pytest.raises(NasbenchError, match="vgg"):
        load_benchmark("channel_bench_macro/vgg", "/nonexistent")
    with pytest.raises(NasbenchError, match="unknown benchmark"):
        load_benchmark("nas_bench_1000", "/nonexistent")
