"""Query and wall-clock budgets of ``Searcher.run`` (max_queries / max_seconds, ``SearchResult.stopped``).

Toy space as in test_searchers.py: 10 genes with choices 1..4,
flops = sum_i w_i * w_{i+1} "MACs", score = -sum_i (w_i - target_i)^2.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from nasbench.errors import ConfigError
from nasbench.searchers import (EvolutionSearcher, LocalSearcher, NSGA2Searcher, RandomSearcher, REASearcher,
                                pareto_front)
from nasbench.searchers.base import SearchResult
from toy import ToyEvaluator, ToySpace

WINDOW = (40, 70)
NAMES = ["random", "evolution", "nsga2", "rea", "local"]
CAP = 137  # not a multiple of any batch size below, so the last batch is cut


def _config(name):
    """Searcher settings whose natural end is well beyond CAP queries."""
    return {"random": {"num_queries": 400, "batch_size": 50},
            "evolution": {"population": 30, "topk": 10, "mutation_num": 15, "crossover_num": 15, "epochs": 20},
            "nsga2": {"pop_size": 30, "generations": 20},
            "rea": {"num_queries": 400, "population": 20, "sample_size": 5},
            "local": {"num_queries": 400}}[name]


CLASSES = {"random": RandomSearcher, "evolution": EvolutionSearcher, "nsga2": NSGA2Searcher, "rea": REASearcher,
           "local": LocalSearcher}


def _make(name, seed=0, **kw):
    return CLASSES[name](**_config(name), flops_range=WINDOW, seed=seed, **kw)


class SleepyEvaluator(ToyEvaluator):
    """ToyEvaluator that sleeps ``delay`` seconds per batch."""

    def __init__(self, delay):
        super().__init__()
        self.delay = delay

    def evaluate(self, archs):
        time.sleep(self.delay)
        return super().evaluate(archs)


@pytest.mark.parametrize("name", NAMES)
def test_max_queries_cuts_at_exactly_the_cap(name):
    space = ToySpace()
    full = _make(name).search(space, ToyEvaluator())
    assert len(full.history) > CAP and full.stopped == "done"

    ev, seen = ToyEvaluator(), []
    res = _make(name, max_queries=CAP, callback=lambda h: seen.append(len(h))).run(space, ev)
    assert isinstance(res, SearchResult) and res.stopped == "max_queries"
    evaluated = [a for call in ev.calls for a in call]
    # the evaluator never sees more than the cap; history = exactly the cap, no duplicates
    assert len(evaluated) == len(set(evaluated)) == len(res.history) == CAP
    assert [h["arch"] for h in res.history] == evaluated
    assert [h["query"] for h in res.history] == list(range(CAP))
    # a run cut at CAP makes exactly the first CAP queries of the unbounded run
    assert [h["arch"] for h in res.history] == [h["arch"] for h in full.history[:CAP]]
    # best = highest score of the truncated history
    assert res.best_metrics["score"] == max(h["score"] for h in res.history)
    assert res.best_arch == res.best_metrics["arch"] and res.best_arch in set(evaluated)
    # the user callback still runs after every evaluated batch, the last one included
    assert len(seen) == len(ev.calls) and seen[-1] == CAP and seen == sorted(seen)


@pytest.mark.parametrize("name", NAMES)
def test_callback_after_every_evaluated_batch(name):
    """Every searcher reports every evaluator call to the callback (also without budgets)."""
    ev, seen = ToyEvaluator(), []
    res = _make(name, callback=lambda h: seen.append([r["arch"] for r in h])).search(ToySpace(), ev)
    assert len(seen) == len(ev.calls) > 1
    n = 0
    for call, hist in zip(ev.calls, seen):
        n += len(call)
        assert hist == [h["arch"] for h in res.history[:n]]


def test_budget_not_reached_is_done_and_identical_to_search():
    space = ToySpace()
    for name in NAMES:
        full = _make(name).search(space, ToyEvaluator())
        res = _make(name, max_queries=10_000, max_seconds=600).run(space, ToyEvaluator())
        assert res.stopped == "done", name
        assert res.history == full.history and res.best_arch == full.best_arch
        assert res.pareto == full.pareto
    # a cap equal to the natural end is not a cut
    res = RandomSearcher(num_queries=100, batch_size=30, flops_range=WINDOW, max_queries=100).run(space, ToyEvaluator())
    assert res.stopped == "done" and len(res.history) == 100


def test_nsga2_pareto_recomputed_from_truncated_history():
    space = ToySpace()
    full = _make("nsga2").search(space, ToyEvaluator())
    res = _make("nsga2", max_queries=45).run(space, ToyEvaluator())
    assert res.stopped == "max_queries" and len(res.history) == 45
    assert res.pareto and res.pareto == pareto_front(res.history)
    archs = {h["arch"] for h in res.history}
    assert all(p["arch"] in archs for p in res.pareto)
    assert res.pareto != full.pareto
    assert max(p["score"] for p in res.pareto) == res.best_metrics["score"]


@pytest.mark.parametrize("name", NAMES)
def test_max_seconds_stops_after_the_batch_that_passes_it(name):
    delay, budget = 0.05, 0.18  # every batch sleeps >= 0.05 s, so the 4th batch ends past 0.18 s
    ev, seen = SleepyEvaluator(delay), []
    t0 = time.perf_counter()
    res = _make(name, max_seconds=budget, callback=lambda h: seen.append(len(h))).run(ToySpace(), ev)
    elapsed = time.perf_counter() - t0
    assert res.stopped == "max_seconds"
    assert 1 <= len(ev.calls) <= math.ceil(budget / delay)  # stopped within 4 batches
    # the result holds exactly what was evaluated so far
    evaluated = [a for call in ev.calls for a in call]
    assert [h["arch"] for h in res.history] == evaluated and len(evaluated) < 400
    assert res.best_metrics["score"] == max(h["score"] for h in res.history)
    assert len(seen) == len(ev.calls) and seen[-1] == len(res.history)
    assert elapsed < 5.0  # generous; the unbounded search would sleep for >= 10 batches


def test_both_budgets_first_one_wins():
    res = _make("random", max_queries=20, max_seconds=600).run(ToySpace(), SleepyEvaluator(0.0))
    assert res.stopped == "max_queries" and len(res.history) == 20
    res = _make("random", max_queries=390, max_seconds=0.01).run(ToySpace(), SleepyEvaluator(0.02))
    assert res.stopped == "max_seconds" and len(res.history) == 50  # one batch of 50


def test_search_ignores_budgets_and_run_is_repeatable():
    space = ToySpace()
    s = _make("random", max_queries=30, progress=True)
    assert len(s.search(space, ToyEvaluator()).history) == 400  # search() runs to its natural end
    a, b = s.run(space, ToyEvaluator()), s.run(space, ToyEvaluator())
    assert a.history == b.history and len(a.history) == 30 and a.stopped == b.stopped == "max_queries"
    assert len(s.search(space, ToyEvaluator()).history) == 400  # budget state does not leak out of run()


def test_callback_errors_propagate():
    def boom(history):
        raise KeyError("from the callback")

    with pytest.raises(KeyError, match="from the callback"):
        _make("evolution", max_queries=50, callback=boom).run(ToySpace(), ToyEvaluator())


@pytest.mark.parametrize("kw", [{"max_queries": 0}, {"max_queries": -3}, {"max_queries": 2.5},
                                {"max_queries": "ten"}, {"max_queries": True}, {"max_seconds": 0},
                                {"max_seconds": -1.0}, {"max_seconds": float("nan")},
                                {"max_seconds": float("inf")}])
def test_bad_budgets_rejected(kw):
    for name in NAMES:
        with pytest.raises(ConfigError, match=next(iter(kw))):
            _make(name, **kw)
    with pytest.raises(ConfigError):
        RandomSearcher(num_queries=10, **kw)


def test_good_budgets_normalised():
    s = RandomSearcher(num_queries=10, max_queries=np.int64(7), max_seconds=2)
    assert s.max_queries == 7 and type(s.max_queries) is int and s.max_seconds == 2.0
    s = RandomSearcher(num_queries=10, max_queries=7.0)
    assert s.max_queries == 7
    s = RandomSearcher(10, None, 0, 100, None, 10_000, False, None)  # old positional signature still works
    assert s.max_queries is None and s.max_seconds is None


def test_run_searcher_uses_max_queries():
    """bench_search cuts generation-based searchers with Searcher.run: the first Q queries of the free run."""
    from nasbench.searchers.bench_search import BenchmarkTruth, run_searcher, searcher_config
    from nasbench.benchmarks.base import TabularBenchmark

    space = ToySpace(n=5, k=4)
    recs = {space.encode(a): {"acc": float(-sum((x - 2) ** 2 for x in a)), "flops": space.flops(a)} for a in space}
    bench = TabularBenchmark("toy", space, recs, metric="acc")
    truth = BenchmarkTruth(bench)
    for name in ("nsga2", "evolution"):
        hist, cfg = run_searcher(name, bench, truth, 53, seed=2)
        assert cfg == searcher_config(name, 53) and "max_queries" not in cfg
        from nasbench.searchers import SearchContext, build_searcher
        free = build_searcher({**cfg, "type": name}, SearchContext(seed=2)).search(truth.space, bench).history
        assert len(free) > 53 and [h["arch"] for h in hist] == [h["arch"] for h in free[:53]]
