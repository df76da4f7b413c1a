"""Searchers (random / evolution / NSGA-II), BCNet prior, distributed evaluator.

Everything runs on a toy space: 10 genes with choices 1..4,
flops = sum_i w_i * w_{i+1} "MACs", score = -sum_i (w_i - target_i)^2, so the
optimum (score 0, the target) is known and legal under the test window.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from nasbench.errors import ConfigError
from nasbench.evaluators import DistributedEvaluator
from nasbench.searchers import (EvolutionSearcher, NSGA2Searcher, PriorSampler, RandomSearcher, SearchContext,
                                build_searcher, expected_flops, fit_prior, loss_table)
from nasbench.searchers.base import SearchResult
from toy import TARGET, ToyEvaluator, ToySpace

WINDOW = (40, 70)


def _searchers(seed, flops_range=WINDOW):
    return {
        "random": RandomSearcher(num_queries=600, flops_range=flops_range, seed=seed),
        "evolution": EvolutionSearcher(population=30, topk=10, mutation_num=15, crossover_num=15,
                                       epochs=20, flops_range=flops_range, seed=seed),
        "nsga2": NSGA2Searcher(pop_size=30, generations=20, flops_range=flops_range, seed=seed),
    }


@pytest.fixture(scope="module")
def runs():
    """{(name, seed): (result, evaluator)} for 4 seeds."""
    space = ToySpace()
    out = {}
    for seed in range(4):
        for name, s in _searchers(seed).items():
            ev = ToyEvaluator()
            out[name, seed] = (s.search(space, ev), ev)
    return out


@pytest.mark.parametrize("name", ["random", "evolution", "nsga2"])
def test_constraint_cache_and_history(runs, name):
    space = ToySpace()
    for seed in range(4):
        res, ev = runs[name, seed]
        assert isinstance(res, SearchResult)
        evaluated = [a for call in ev.calls for a in call]
        # constraint checked before evaluation: nothing illegal reaches the evaluator
        assert all(WINDOW[0] <= space.flops(a) <= WINDOW[1] for a in evaluated)
        # never the same arch twice, across and within batches
        assert len(evaluated) == len(set(evaluated))
        # full history in query order with evaluator extras, flops filled in
        assert [h["arch"] for h in res.history] == evaluated
        assert [h["query"] for h in res.history] == list(range(len(evaluated)))
        for h in res.history:
            assert h["flops"] == space.flops(h["arch"]) and h["extra"] == sum(h["arch"])
        assert res.best_metrics["score"] == max(h["score"] for h in res.history)
        assert res.best_arch == res.best_metrics["arch"]


def test_ea_and_nsga2_beat_random(runs):
    def hits(name):
        return sum(runs[name, s][0].best_metrics["score"] == 0 for s in range(4))

    def first_hit(name, s):
        q = [h["query"] for h in runs[name, s][0].history if h["score"] == 0]
        return q[0] if q else np.inf

    assert hits("random") == 0  # 600 of ~1e6 archs: optimum practically never drawn
    assert hits("evolution") == 4
    assert hits("nsga2") >= 3
    for s in range(4):
        assert runs["evolution", s][0].best_metrics["score"] >= runs["random", s][0].best_metrics["score"]
        assert runs["nsga2", s][0].best_metrics["score"] >= runs["random", s][0].best_metrics["score"] - 1
        assert first_hit("evolution", s) <= 600


def test_query_budgets(runs):
    for seed in range(4):
        assert len(runs["random", seed][0].history) == 600
        assert len(runs["evolution", seed][0].history) <= 20 * 30
        assert len(runs["evolution", seed][1].calls) == 20  # one batch per epoch
        assert len(runs["nsga2", seed][1].calls) <= 20  # one batch per generation
        assert len(runs["random", seed][1].calls) == 6  # batches of 100


@pytest.mark.parametrize("name", ["random", "evolution", "nsga2"])
def test_determinism(name):
    space = ToySpace()

    def run(seed):
        s = {"random": RandomSearcher(num_queries=150, flops_range=WINDOW, seed=seed),
             "evolution": EvolutionSearcher(population=20, topk=5, mutation_num=10, crossover_num=10,
                                            epochs=4, flops_range=WINDOW, seed=seed),
             "nsga2": NSGA2Searcher(pop_size=16, generations=4, flops_range=WINDOW, seed=seed)}[name]
        return [h["arch"] for h in s.search(space, ToyEvaluator()).history]

    a, b, c = run(7), run(7), run(8)
    assert a == b
    assert a != c


def test_nsga2_pareto(runs):
    res, _ = runs["nsga2", 0]
    assert res.pareto
    front = [(p["score"], p["flops"]) for p in res.pareto]
    for h in res.history:  # every evaluated arch is weakly dominated by a front member
        assert any(s >= h["score"] and f <= h["flops"] for s, f in front)
    for s1, f1 in front:  # no front member dominates another
        assert not any((s2 >= s1 and f2 <= f1) and (s2 > s1 or f2 < f1) for s2, f2 in front)
    assert max(s for s, _ in front) == res.best_metrics["score"]


def test_nsga2_unconstrained_and_one_sided():
    space = ToySpace()
    res = NSGA2Searcher(pop_size=12, generations=3, flops_range=(None, 50), seed=0).search(
        space, ToyEvaluator())
    assert all(h["flops"] <= 50 for h in res.history)
    res = NSGA2Searcher(pop_size=12, generations=3, seed=0).search(space, ToyEvaluator())
    assert len(res.history) > 12


@pytest.mark.parametrize("name", ["random", "evolution", "nsga2"])
def test_infeasible_budget_raises(name):
    space = ToySpace()  # max flops = 9 * 16 = 144
    kw = dict(flops_range=(500, None), seed=0, max_tries=200)
    s = {"random": lambda: RandomSearcher(num_queries=10, **kw),
         "evolution": lambda: EvolutionSearcher(population=10, epochs=2, **kw),
         "nsga2": lambda: NSGA2Searcher(pop_size=10, generations=2, **kw)}[name]()
    ev = ToyEvaluator()
    with pytest.raises(RuntimeError, match="infeasible"):
        s.search(space, ev)
    assert ev.calls == []


def test_bad_window_rejected():
    with pytest.raises(ValueError, match="empty"):
        RandomSearcher(num_queries=5, flops_range=(10, 5))


def test_small_space_exhausted_without_duplicates():
    space = ToySpace(n=3, k=2)  # 8 archs
    ev = ToyEvaluator(target=(1, 2, 1))
    res = RandomSearcher(num_queries=50, seed=0, max_tries=500).search(space, ev)
    assert sorted(h["arch"] for h in res.history) == sorted(space)
    res = EvolutionSearcher(population=6, topk=2, mutation_num=3, crossover_num=3, epochs=5,
                            seed=0, max_tries=500).search(space, ToyEvaluator(target=(1, 2, 1)))
    assert res.best_arch == (1, 2, 1)
    assert len({h["arch"] for h in res.history}) == len(res.history)


def test_callback_and_progress():
    seen = []
    s = EvolutionSearcher(population=10, topk=3, mutation_num=5, crossover_num=5, epochs=3,
                          flops_range=WINDOW, seed=0, progress=True,
                          callback=lambda hist: seen.append(len(hist)))
    res = s.search(ToySpace(), ToyEvaluator())
    assert len(seen) == 3 and seen[-1] == len(res.history) and seen == sorted(seen)


def test_sampler_is_used():
    space = ToySpace()
    logits = np.full((10, 4), -30.0)
    logits[:, 2] = 0.0  # all mass on width 3
    sampler = PriorSampler(logits, [space.choices(i) for i in range(10)])
    ev = ToyEvaluator()
    EvolutionSearcher(population=10, topk=3, mutation_num=0, crossover_num=0, epochs=1,
                      seed=0, sampler=sampler, max_tries=50).search(space, ev)
    assert ev.calls == [[(3,) * 10]]  # the only arch the sampler can draw


def test_build_searcher():
    assert isinstance(build_searcher({"type": "random", "num_queries": 3}), RandomSearcher)
    assert build_searcher({"type": "evolution", "epochs": 2}).epochs == 2
    assert isinstance(build_searcher("EA"), EvolutionSearcher)
    nsga = build_searcher({"type": "nsga2", "population": 8}, SearchContext(seed=3))
    assert isinstance(nsga, NSGA2Searcher) and nsga.pop_size == 8 and nsga.seed == 3
    with pytest.raises(ConfigError, match="known"):
        build_searcher("annealing")
    with pytest.raises(ConfigError, match="does not apply to search.type random"):
        build_searcher({"type": "random", "bogus": 1})
    with pytest.raises(ConfigError, match=r"must lie in \[1, inf\]"):
        build_searcher({"type": "random", "num_queries": 0})


# -- BCNet prior ------------------------------------------------------------------
CH = [[1, 2, 3, 4]] * 6
LAYER_FLOPS = np.array([1e7, 3e7, 3e7, 2e7, 4e7, 1e7])  # full-width MACs


def _records(seed=0, n=200):
    rng = np.random.default_rng(seed)
    recs = []
    for _ in range(n):
        a = tuple(int(x) for x in rng.integers(1, 5, 6))
        loss = 2.0 - 1.0 * (a[2] == 2) + rng.normal(0, 0.01)  # width 2 of layer 2 is good
        recs.append((a, loss))
    return recs


def test_loss_table():
    E, n = loss_table([((1, 2), 1.0), ((1, 3), 3.0)], [[1, 2, 3], [1, 2, 3]])
    assert E[0, 0] == 2.0 and n[0, 0] == 2
    assert E[1, 1] == 1.0 and E[1, 2] == 3.0
    assert E[0, 1] == 4.0 and E[1, 0] == 4.0  # unseen: max + 1
    with pytest.raises(ValueError):
        loss_table([((1, 9), 1.0)], [[1, 2, 3], [1, 2, 3]])


@pytest.mark.parametrize("target_ratio", [0.4, 1.0])
def test_prior_fits_loss_and_flops(target_ratio):
    budget = 0.5 * LAYER_FLOPS.sum()
    target = target_ratio * budget
    P = fit_prior(_records(), LAYER_FLOPS, budget, CH, target_ratio=target_ratio)
    assert P.shape == (6, 4)
    f0 = expected_flops(np.zeros((6, 4)), LAYER_FLOPS, CH)
    f1 = expected_flops(P, LAYER_FLOPS, CH)
    assert abs(f1 - target) < 0.1 * abs(f0 - target)
    assert abs(f1 / target - 1) < 0.01
    p = PriorSampler(P, CH).probs
    # the low-loss width is the most likely one in its layer, and more likely than elsewhere
    assert p[2].argmax() == 1
    assert all(p[2, 1] > p[l, 1] + 0.05 for l in range(6) if l != 2)


def test_prior_unseen_widths_and_layer_flops_callable():
    recs = [((1, 2, 3, 4, 1, 2), 1.0), ((2, 2, 3, 4, 1, 2), 1.1)]
    budget = 0.5 * LAYER_FLOPS.sum()
    P = fit_prior(recs, lambda l: LAYER_FLOPS[l], budget, CH, steps=500, target_ratio=1.0)
    P2 = fit_prior(recs, LAYER_FLOPS, budget, CH, steps=500, target_ratio=1.0)
    np.testing.assert_allclose(P, P2)
    p = PriorSampler(P, CH).probs
    assert p[0, :2].sum() > p[0, 2:].sum()  # widths 3, 4 of layer 0 never recorded
    with pytest.raises(ValueError):
        fit_prior(recs, LAYER_FLOPS[:3], budget, CH)
    with pytest.raises(ValueError):
        fit_prior(recs, LAYER_FLOPS, 0, CH)


def test_prior_sampler():
    logits = np.log(np.array([[0.7, 0.2, 0.1, 1e-12]] * 3))
    s = PriorSampler(logits, [[1, 2, 3, 4]] * 3)
    rng = np.random.default_rng(0)
    draws = np.array([s(rng) for _ in range(4000)])
    freq = [(draws[:, 0] == w).mean() for w in (1, 2, 3, 4)]
    np.testing.assert_allclose(freq, [0.7, 0.2, 0.1, 0.0], atol=0.03)
    a = [s(np.random.default_rng(3)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    s2 = PriorSampler.from_state_dict(pickle.loads(pickle.dumps(s.state_dict())))
    np.testing.assert_allclose(s2.probs, s.probs)
    assert s2(np.random.default_rng(3)) == a[0]
    ragged = PriorSampler(np.zeros((2, 3)), [[1, 2], [1, 2, 3]])
    assert ragged.probs[0, 2] == 0 and all(ragged(rng)[0] in (1, 2) for _ in range(50))


# -- distributed evaluator -----------------------------------------------------------
ARCHS = [tuple(int(x) for x in np.random.default_rng(i).integers(1, 5, 10)) for i in range(7)]


def _dist_worker(rank, world, init_file, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        local = ToyEvaluator()
        ev = DistributedEvaluator(local)
        batch = ev.evaluate(ARCHS)
        res = EvolutionSearcher(population=12, topk=4, mutation_num=6, crossover_num=6, epochs=3,
                                flops_range=WINDOW, seed=5).search(ToySpace(), ev)
        with open(f"{out_dir}/rank{rank}.pkl", "wb") as f:
            pickle.dump({"batch": batch, "local_first_call": local.calls[0],
                         "history": res.history, "target": ev.target}, f)
    finally:
        dist.destroy_process_group()


def test_distributed_evaluator_matches_single_process(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_dist_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    single = DistributedEvaluator(ToyEvaluator())  # no process group: pass-through
    ref_batch = single.evaluate(ARCHS)
    ref_hist = EvolutionSearcher(population=12, topk=4, mutation_num=6, crossover_num=6, epochs=3,
                                 flops_range=WINDOW, seed=5).search(ToySpace(), ToyEvaluator()).history
    for r in range(2):
        with open(tmp_path / f"rank{r}.pkl", "rb") as f:
            out = pickle.load(f)
        assert out["batch"] == ref_batch
        assert out["local_first_call"] == ARCHS[r::2]
        assert out["history"] == ref_hist
        assert out["target"] == TARGET  # attribute pass-through
