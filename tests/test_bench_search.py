"""Regularized evolution, local search and the benchmark comparison tool (tools/bench_search.py).

Toy space as in test_searchers.py: 10 genes with choices 1..4,
flops = sum_i w_i * w_{i+1} "MACs", score = -sum_i (w_i - target_i)^2, so the
optimum (score 0, the target) is known and legal under the test window.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nasbench.benchmarks.base import TabularBenchmark
from nasbench.searchers.bench_search import (BenchmarkTruth, bench_search, queries_to_top, regret_curve,
                                   run_searcher, searcher_config)
from nasbench.errors import ConfigError, NasbenchError
from nasbench.searchers import LocalSearcher, RandomSearcher, REASearcher, build_searcher
from nasbench.searchers.local import neighbours
from toy import TARGET, ToyEvaluator, ToySpace

REPO = Path(__file__).resolve().parents[1]
WINDOW = (40, 70)
BUDGET = 600


class NoFlopsSpace(ToySpace):
    name = "toy-noflops"

    def flops(self, arch):
        raise NotImplementedError("no FLOPs model")


def _make(name, seed, num_queries=BUDGET, flops_range=WINDOW, **kw):
    cls = {"random": RandomSearcher, "rea": REASearcher, "local": LocalSearcher}[name]
    return cls(num_queries=num_queries, flops_range=flops_range, seed=seed, **kw)


def _first_hit(history):
    q = [h["query"] for h in history if h["score"] == 0]
    return q[0] + 1 if q else math.inf


@pytest.fixture(scope="module")
def toy_runs():
    space = ToySpace()
    out = {}
    for seed in range(4):
        for name in ("random", "rea", "local"):
            ev = ToyEvaluator()
            out[name, seed] = (_make(name, seed).search(space, ev), ev)
        ev = ToyEvaluator()
        out["local-first", seed] = (_make("local", seed, first_improvement=True).search(space, ev), ev)
    return out


# -- REA and local search on the toy space ----------------------------------------
def test_rea_and_local_find_optimum_faster_than_random(toy_runs):
    for seed in range(4):
        assert _first_hit(toy_runs["random", seed][0].history) == math.inf  # 600 of ~1e6 archs
        for name in ("rea", "local", "local-first"):
            res = toy_runs[name, seed][0]
            assert _first_hit(res.history) <= BUDGET, (name, seed)
            assert res.best_metrics["score"] == 0 and res.best_arch == TARGET
    for name in ("rea", "local", "local-first"):
        assert np.mean([_first_hit(toy_runs[name, s][0].history) for s in range(4)]) < 400


@pytest.mark.parametrize("name", ["rea", "local", "local-first"])
def test_budget_constraint_and_no_duplicates(toy_runs, name):
    space = ToySpace()
    for seed in range(4):
        res, ev = toy_runs[name, seed]
        evaluated = [a for call in ev.calls for a in call]
        assert len(evaluated) == len(set(evaluated)) == BUDGET  # budget used exactly, never twice
        assert all(WINDOW[0] <= space.flops(a) <= WINDOW[1] for a in evaluated)
        assert [h["arch"] for h in res.history] == evaluated
        assert [h["query"] for h in res.history] == list(range(BUDGET))


def test_rea_one_child_per_cycle_and_local_batches(toy_runs):
    _, ev = toy_runs["rea", 0]
    assert len(ev.calls[0]) == REASearcher().population  # initial population in one batch
    assert all(len(c) == 1 for c in ev.calls[1:])  # then one mutant per cycle
    _, ev = toy_runs["local", 0]
    assert len(ev.calls[0]) == 1  # random start, then neighbourhoods in one batch each
    assert all(len(c) <= 30 for c in ev.calls)  # 10 genes x 3 other values
    _, ev = toy_runs["local-first", 0]
    assert all(len(c) == 1 for c in ev.calls)


def test_rea_mutants_differ_from_a_population_member():
    """Every REA child after the initial population is one-or-more-gene mutant of an arch queried before."""
    ev = ToyEvaluator()
    res = REASearcher(num_queries=200, population=20, sample_size=5, seed=3).search(ToySpace(), ev)
    archs = [h["arch"] for h in res.history]
    for i in range(20, 200):
        d = min(sum(x != y for x, y in zip(archs[i], p)) for p in archs[:i])
        assert d >= 1
    # with mutation_prob = 1/num_genes most children are close to a previous arch
    close = sum(min(sum(x != y for x, y in zip(archs[i], p)) for p in archs[:i]) <= 2 for i in range(20, 200))
    assert close > 150


def test_neighbours():
    space = ToySpace(n=3, k=4)
    nb = neighbours(space, (1, 2, 3))
    assert len(nb) == len(set(nb)) == 9
    assert all(sum(x != y for x, y in zip(n, (1, 2, 3))) == 1 for n in nb)


@pytest.mark.parametrize("name", ["rea", "local"])
def test_determinism(name):
    def run(seed):
        return [h["arch"] for h in _make(name, seed, num_queries=120).search(ToySpace(), ToyEvaluator()).history]

    assert run(5) == run(5)
    assert run(5) != run(6)


@pytest.mark.parametrize("name", ["rea", "local"])
def test_small_space_exhausted(name):
    space = ToySpace(n=3, k=2)  # 8 archs
    ev = ToyEvaluator(target=(1, 2, 1))
    res = _make(name, 0, num_queries=50, flops_range=None, max_tries=300).search(space, ev)
    assert sorted(h["arch"] for h in res.history) == sorted(space)
    assert res.best_arch == (1, 2, 1)


@pytest.mark.parametrize("name", ["rea", "local"])
def test_infeasible_window_raises(name):
    ev = ToyEvaluator()
    with pytest.raises(RuntimeError, match="infeasible"):
        _make(name, 0, num_queries=10, flops_range=(500, None), max_tries=200).search(ToySpace(), ev)
    assert ev.calls == []


def test_registry_and_bad_args():
    assert isinstance(build_searcher({"type": "rea", "num_queries": 5}), REASearcher)
    assert isinstance(build_searcher({"type": "LOCAL", "num_queries": 5}), LocalSearcher)
    with pytest.raises(ConfigError):
        build_searcher({"type": "rea", "bogus": 1})
    with pytest.raises(ValueError):
        REASearcher(num_queries=0)
    with pytest.raises(ValueError):
        LocalSearcher(num_queries=10, flops_range=(5, 1))


# -- regret / top-p% bookkeeping on a toy benchmark ------------------------------------
def _toy_bench(space, with_flops=True):
    rng = np.random.default_rng(0)
    recs = {}
    for a in space:
        acc = float(np.round(90 - sum((x - t) ** 2 for x, t in zip(a, TARGET[:space.n])) + rng.normal(0, 0.3), 1))
        recs[space.encode(a)] = {"acc": acc, "flops": space.flops(a) if with_flops else None}
    return TabularBenchmark("toy", space, recs, metric="acc")


def test_truth_cutoffs_match_benchmark_rank_with_ties():
    bench = _toy_bench(ToySpace(n=4, k=4))  # 256 archs, accuracies rounded to 0.1 -> ties
    truth = BenchmarkTruth(bench)
    assert truth.cutoff_rank == {"1pct": 3, "0.1pct": 1}
    for key in bench:
        arch = bench.space.decode(key)
        assert truth.rank(arch) == bench.rank(arch)
        for k in ("1pct", "0.1pct"):
            assert (truth.acc[arch] >= truth.cutoff_acc[k]) == (bench.rank(arch) <= truth.cutoff_rank[k])
    assert truth.best_acc == bench.best()[1]["acc"]


def test_regret_curve_and_queries_to_top():
    bench = _toy_bench(ToySpace(n=4, k=4))
    truth = BenchmarkTruth(bench)
    order = sorted(truth.acc, key=lambda a: truth.acc[a])  # worst first
    hist = [{"arch": a} for a in order[:5] + [order[-1]]]
    reg = regret_curve(hist, truth, 10)
    assert reg.shape == (10,) and reg[-1] == 0 and np.all(np.diff(reg) <= 0) and reg.min() >= 0
    assert reg[0] == pytest.approx(truth.best_acc - truth.acc[order[0]])
    assert np.all(reg[5:] == 0)  # padded with the last value
    assert queries_to_top(hist, truth, "0.1pct", 10) == (6, True)
    assert queries_to_top(hist[:5], truth, "1pct", 10) == (10, False)
    assert len(regret_curve(hist, truth, 3)) == 3


def test_benchmark_without_flops():
    space = NoFlopsSpace(n=5, k=4)
    bench = _toy_bench(space, with_flops=False)
    truth = BenchmarkTruth(bench)
    assert not truth.has_flops and truth.space.flops(TARGET[:5]) == 0
    for name in ("random", "rea", "local", "nsga2", "evolution"):
        hist, _ = run_searcher(name, bench, truth, 60, seed=0)
        assert len(hist) == 60 and len({h["arch"] for h in hist}) == 60, name
    with pytest.raises(NasbenchError, match="no FLOPs"):
        BenchmarkTruth(bench, flops_budget=10)


def test_flops_budget_and_generation_searchers_cut_at_budget():
    bench = _toy_bench(ToySpace(n=5, k=4))
    truth = BenchmarkTruth(bench, flops_budget=30)
    assert all(f <= 30 for a, f in truth.flops.items() if truth.acc[a] == truth.best_acc)
    for name in ("nsga2", "evolution", "rea", "local"):
        hist, cfg = run_searcher(name, bench, truth, 77, seed=1)
        assert len(hist) == 77, name  # generation-based searchers are cut at exactly Q
        assert all(truth.flops[h["arch"]] <= 30 for h in hist)
        assert regret_curve(hist, truth, 77).min() >= 0


def test_searcher_config():
    assert searcher_config("rea", 1000) == {"num_queries": 1000, "population": 50, "sample_size": 10}
    c = searcher_config("nsga2", 1000)
    assert c["population"] == 40 and c["population"] * c["epochs"] >= 1000
    c = searcher_config("ea", 50)
    assert c["population"] * c["epochs"] >= 50
    with pytest.raises(ConfigError, match="unknown searcher"):
        bench_search("nas_bench_macro", "annealing", 10, 1, out=None)


# -- the tool on real benchmarks ------------------------------------------------------
def _check_contract(res, searchers, Q, S):
    assert set(res) == set(searchers)
    for name, st in res.items():
        assert len(st["mean_regret"]) == Q and len(st["std_regret"]) == Q
        m = np.array(st["mean_regret"])
        assert np.all(m >= 0) and np.all(np.diff(m) <= 1e-12), name
        assert np.all(np.array(st["std_regret"]) >= 0)
        for k in ("queries_to_top_1pct", "queries_to_top_0.1pct"):
            assert 1 <= st[k] <= Q, (name, k)
            assert len(st["per_seed"][k]) == S and all(1 <= q <= Q for q in st["per_seed"][k])
        assert st["queries_to_top_0.1pct"] >= st["queries_to_top_1pct"]
        assert len(st["per_seed"]["regret"]) == S
        for curve in st["per_seed"]["regret"]:
            c = np.array(curve)
            assert len(c) == Q and c.min() >= 0 and np.all(np.diff(c) <= 0)
        assert st["per_seed"]["num_queries"] == [Q] * S


def test_tool_channel_bench_macro_mobilenet(bench_root, tmp_path):
    out = tmp_path / "bdir"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(REPO / "tools" / "bench_search.py"),
           "--benchmark", "channel_bench_macro/mobilenet", "--searchers", "random,rea,nsga2,local,evolution", "--budget", "50", "--seeds", "2",
           "--root", str(bench_root), "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads((out / "results.json").read_text())
    _check_contract(res, ["random", "rea", "nsga2", "local", "evolution"], 50, 2)
    assert json.loads((out / "channel_bench_macro-mobilenet" / "results.json").read_text()) == res
    assert res["nsga2"]["pareto"] and len(res["nsga2"]["pareto"]) == 2
    assert res["rea"]["truth"]["top_1pct_rank"] == 164 and res["rea"]["truth"]["num_archs"] == 16384
    for png in ("regret.png", "regret_channel_bench_macro-mobilenet.png",
                "pareto_nsga2_channel_bench_macro-mobilenet.png"):
        assert (out / png).stat().st_size > 1000
    # bad input: one error line, exit code 2
    r = subprocess.run(cmd[:5] + ["random,annealing"] + cmd[6:], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error:") and "annealing" in r.stderr


def test_two_benchmarks_with_nas_bench_macro(bench_root, tmp_path):
    out = tmp_path / "bdir2"
    names = ["rea", "nsga2", "local"]
    res = bench_search("nas_bench_macro,channel_bench_macro/resnet", names, 40, 2, root=bench_root, out=out,
                       progress=False)
    assert list(res) == ["nas_bench_macro", "channel_bench_macro/resnet"]
    for b in res:
        _check_contract(res[b], names, 40, 2)
        assert json.loads((out / b.replace("/", "-") / "results.json").read_text()) == json.loads(
            json.dumps(res[b]))
    top = json.loads((out / "results.json").read_text())  # the first benchmark's searchers
    assert set(top) == set(names) and top["rea"]["benchmark"] == "nas_bench_macro"
    assert top["rea"]["truth"]["num_archs"] == 6561 and top["rea"]["truth"]["top_0.1pct_rank"] == 7
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"nas_bench_macro", "channel_bench_macro/resnet", "_meta"}
    assert (out / "summary.md").read_text().count("| nas_bench_macro |") == 3
    for png in ("regret.png", "regret_nas_bench_macro.png", "pareto_nsga2_nas_bench_macro.png",
                "regret_channel_bench_macro-resnet.png", "pareto_nsga2_channel_bench_macro-resnet.png"):
        assert (out / png).exists()


def test_flops_budget_on_benchmark(bench_root):
    from nasbench.benchmarks import load_benchmark

    bench = load_benchmark("channel_bench_macro/mobilenet", bench_root)
    flops = sorted(bench.query(k)["flops"] for k in bench)
    budget = flops[len(flops) // 4]
    res = bench_search("channel_bench_macro/mobilenet", "random,nsga2", 30, 1, root=bench_root, out=None,
                       flops_budget=budget, progress=False)["channel_bench_macro/mobilenet"]
    _check_contract(res, ["random", "nsga2"], 30, 1)
    truth = res["nsga2"]["truth"]
    assert truth["flops_budget"] == budget and truth["num_archs"] == sum(f <= budget for f in flops)
    assert truth["best_acc"] == bench.best(max_flops=budget)[1]["mean_acc"]
    assert all(p["flops"] <= budget for p in res["nsga2"]["pareto"][0])
