"""NAS-Bench-Macro: cost model, standalone networks and canonicalisation against the benchmark file."""
from collections import defaultdict

import numpy as np
import pytest
import torch

from nasbench.benchmarks.nas_bench_macro import load_nas_bench_macro
from nasbench.errors import ArchError, DataNotFoundError, NasbenchError
from nasbench.metrics.flops import count_macs, count_params
from nasbench.registry import SPACES
from nasbench.spaces.nas_bench_macro import NASBenchMacroSpace

FILE = "nas-bench-macro_cifar10.json"


@pytest.fixture(scope="module")
def bench(bench_of):
    return bench_of("nas_bench_macro")


def _counted(space, key):
    """(params, MACs) of the built standalone network, counted on the meta device."""
    with torch.device("meta"):
        net = space.build(key)
    return count_params(net), count_macs(net, (3, 32, 32))


def _check(bench, keys, build):
    mism = []
    for k in keys:
        q = bench.query(k)
        got = _counted(bench.space, k) if build else (bench.space.params(k), bench.space.flops(k))
        if got != (q["params"], q["flops"]):
            mism.append((k, got, q["params"], q["flops"]))
    assert not mism, mism[:5]


def test_table_cost_matches_all(bench):
    """The counted per-op lookup tables reproduce the benchmark's params and FLOPs for all 6,561 keys."""
    _check(bench, list(bench), build=False)


def test_layer_tables_sum_to_cost(bench):
    s = bench.space
    ft, pt = s.layer_flops_table(), s.layer_params_table()
    assert ft.shape == pt.shape == (8, 3)
    for k in bench:
        a = s.decode(k)
        assert s.base_flops + sum(ft[l, o] for l, o in enumerate(a)) == s.flops(a)
        assert s.base_params + sum(pt[l, o] for l, o in enumerate(a)) == s.params(a)
    # identity costs nothing except the stride-2 downsample at the first layer of each stage
    assert [int(x) > 0 for x in ft[:, 0]] == [True, False, True, False, False, True, False, False]
    assert (ft[:, 2] > ft[:, 1]).all()


def test_built_networks_match_sample(bench):
    keys = list(bench)
    rng = np.random.default_rng(0)
    _check(bench, [keys[i] for i in rng.choice(len(keys), 500, replace=False)], build=True)


@pytest.mark.slow
def test_built_networks_match_all(bench):
    _check(bench, list(bench), build=True)


def test_hook_counter_agrees_with_torch_flop_counter():
    from torch.utils.flop_counter import FlopCounterMode
    space = NASBenchMacroSpace()
    net = space.build("10201102")
    with FlopCounterMode(display=False) as fc:
        out = net(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert count_macs(net) == fc.get_total_flops() // 4 == space.flops("10201102")  # batch 2, 2 FLOPs per MAC


def test_canonical_groups(bench):
    s = bench.space
    groups = defaultdict(list)
    for k in bench:
        groups[bench.query(k)["canonical"]].append(k)
    assert len(groups) == 3969
    for c, ks in groups.items():
        assert s.is_canonical(c) and c in ks
        recs = [bench.query(k) for k in ks]
        assert all({f: r[f] for f in r if f != "canonical"} == {f: recs[0][f] for f in r if f != "canonical"}
                   for r in recs)
    # identical records <=> identical canonical form
    by_record = defaultdict(set)
    for k in bench:
        q = bench.query(k)
        by_record[(q["mean_acc"], tuple(q["test_acc"]), q["params"], q["flops"])].add(q["canonical"])
    assert len(by_record) == 3969 and all(len(v) == 1 for v in by_record.values())


def test_canonical_examples():
    s = NASBenchMacroSpace()
    assert s.encode(s.canonical("10201102")) == "10210120"
    assert s.canonical((0, 2, 0, 0, 1, 0, 0, 0)) == (0, 2, 0, 1, 0, 0, 0, 0)
    assert s.encode(s.canonical("00000000")) == "00000000"  # first layer of a stage never moves
    assert s.canonical(s.canonical("02001010")) == s.canonical("02001010")
    assert sum(s.is_canonical(a) for a in s) == 3969


def test_canonical_network_is_the_same_function():
    """A key and its canonical form give the same outputs once the non-trivial layers share weights."""
    torch.manual_seed(0)
    s = NASBenchMacroSpace()
    key = "10201102"
    a, c = s.build(key).eval(), s.build(s.canonical(key)).eval()
    assert count_params(a) == count_params(c)

    def real(arch):
        return [i for i, op in enumerate(s.decode(arch) if isinstance(arch, str) else arch)
                if op != 0 or s.layers[i][2] != 1]
    for i, j in zip(real(key), real(s.canonical(key))):
        c.features[j].load_state_dict(a.features[i].state_dict())
    for name in ("stem", "out", "classifier"):
        getattr(c, name).load_state_dict(getattr(a, name).state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(a(x), c(x))


def test_best_architecture(bench):
    key, rec = bench.best()
    assert rec["canonical"] == "22212220" and round(rec["mean_acc"], 2) == 93.13
    assert bench.rank("22212220") == 1 and bench.rank("22212202") == 1


def test_benchmark_interface(bench, bench_root):
    keys = list(bench)
    assert len(keys) == 6561 == len(bench.space) and len(set(keys)) == 6561
    q = bench.query("22212220")
    assert set(q) == {"mean_acc", "std", "test_acc", "params", "flops", "canonical"}
    assert len(q["test_acc"]) == 3
    assert q["mean_acc"] == pytest.approx(np.mean(q["test_acc"]))
    assert q["std"] == pytest.approx(np.std(q["test_acc"]))  # population std (upstream np.std)
    assert bench.query((2, 2, 2, 1, 2, 2, 2, 0)) == q
    assert bench.query("00000000")["flops"] == bench.space.flops("00000000") == 7713280
    ev = bench.evaluate(["11111111"])[0]
    assert ev["score"] == ev["mean_acc"]
    assert load_nas_bench_macro("cifar10", bench_root).name == "nas_bench_macro"


@pytest.mark.parametrize("bad, where", [("2221222", "7 characters"), ("222122200", "9 characters"),
                                        ("22212223", "position 8"), ("2a212220", "position 2"),
                                        ("-2212220", "position 1")])
def test_bad_keys(bad, where):
    with pytest.raises(ArchError) as e:
        NASBenchMacroSpace().decode(bad)
    assert repr(bad) in str(e.value) and where in str(e.value)


def test_tuple_validation_names_position():
    with pytest.raises(ArchError, match="gene 3"):
        NASBenchMacroSpace().validate((0, 1, 2, 3, 0, 0, 0, 0))
    with pytest.raises(ArchError, match="expected 8"):
        NASBenchMacroSpace().validate((0, 1))


def test_registry_and_config_kwargs():
    s = SPACES.build("nas_bench_macro", num_classes=100)
    assert isinstance(s, NASBenchMacroSpace) and s.num_genes == 8 and len(s) == 6561
    assert s.build("12012012").classifier.out_features == 100
    assert s.params("12012012") == NASBenchMacroSpace().params("12012012") + 90 * 1281
    with pytest.raises(ArchError, match="variant"):
        NASBenchMacroSpace(variant="mobilenet")


def test_unknown_variant():
    with pytest.raises(NasbenchError, match="imagenet"):
        load_nas_bench_macro("imagenet", "/nonexistent")


def test_missing_benchmark_is_clear(tmp_path, monkeypatch):
    monkeypatch.delenv("NASBENCH_MIRROR", raising=False)
    monkeypatch.setattr("nasbench.data.files._download", lambda url, dst: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(DataNotFoundError) as e:
        load_nas_bench_macro("", tmp_path)
    assert FILE in str(e.value) and str(tmp_path) in str(e.value)


def test_mirror_fills_root(tmp_path, monkeypatch, mirror):
    monkeypatch.setenv("NASBENCH_MIRROR", str(mirror))
    b = load_nas_bench_macro("", tmp_path)
    assert (tmp_path / "nas_bench_macro" / FILE).is_file() and len(b) == 6561


def test_malformed_file(tmp_path):
    (tmp_path / "nas_bench_macro").mkdir()
    (tmp_path / "nas_bench_macro" / FILE).write_text('{"0000000x": {"mean_acc": 1}}')
    with pytest.raises(NasbenchError, match="not a NAS-Bench-Macro results file"):
        load_nas_bench_macro("", tmp_path)
