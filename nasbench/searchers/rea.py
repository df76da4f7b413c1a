"""Regularized (aging) evolution, Real et al. 2019 ("Regularized Evolution for
Image Classifier Architecture Search", AAAI; Algorithm 1).

1. Initialise the population with ``population`` legal, distinct random
   architectures (``sampler(rng)`` if given, else ``space.sample``), scored in
   one ``evaluator.evaluate`` batch.
2. Each cycle: draw ``sample_size`` members of the population uniformly
   *without* replacement, take the best of them by ``score`` (the parent),
   mutate it with ``space.mutate(parent, mutation_prob, rng)`` until the child
   differs from the parent in at least one gene, is legal under the FLOPs
   window and has never been queried; score the child (one query, one
   ``evaluate`` call), append it to the population and remove the *oldest*
   member (aging, not the worst).
3. Stop after ``num_queries`` distinct architectures have been queried.

Deviations from the paper, both forced by the package's "never evaluate an
architecture twice" rule (:class:`~nasbench.evaluators.query.QueryCache`):

* a mutant that was already queried is rejected and the mutation is redrawn
  (the paper would re-train it and add it again). After ``max_tries``
  rejected mutants of one parent the cycle falls back to a fresh random
  legal, unseen architecture (this only happens in nearly exhausted
  neighbourhoods);
* the search stops early when no unseen legal architecture can be found at
  all (the reachable space is exhausted).

``mutation_prob`` defaults to ``1 / num_genes`` (one gene redrawn on average;
together with the at-least-one-gene rule this is close to the paper's
single-mutation operator).
"""
from __future__ import annotations

from collections import deque
from typing import Callable

import numpy as np

from ..evaluators.query import DEFAULT_MAX_TRIES, QueryCache, score_key as _score_key
from ..registry import SEARCHERS, Key
from .base import SearchResult, Searcher

__all__ = ["REASearcher"]


@SEARCHERS.register("rea", aliases=("regularized_evolution",))
class REASearcher(Searcher):
    """Regularized evolution (aging evolution) under a query budget; maximises ``score``.

    Args:
        num_queries: number of distinct architectures to evaluate (budget).
        population: population size ``P`` (also the number of random initial
            architectures); clipped to ``num_queries``.
        sample_size: tournament size ``S`` (``1 <= S``; clipped to the
            current population size).
        mutation_prob: per-gene redraw probability of ``space.mutate``
            (default ``1 / num_genes``); mutants equal to their parent are
            redrawn.
        flops_range: ``(lo, hi)`` in MACs; ``None`` ends are unbounded.
        seed: int, ``np.random.Generator`` or ``None``; same seed, same result.
        sampler: optional ``sampler(rng) -> arch`` for the initial population
            and fallbacks (e.g. :class:`~nasbench.searchers.prior.PriorSampler`).
        max_tries: mutation attempts per cycle (and draws per random sample)
            before falling back / declaring the window infeasible.
        progress, callback: see :class:`~nasbench.evaluators.query.QueryCache`.
        max_queries, max_seconds: budgets (queries, seconds) enforced by
            :meth:`~nasbench.searchers.base.Searcher.run`; ``search`` ignores them.

    ``search(space, evaluator)`` returns a :class:`SearchResult` whose
    ``history`` has one record per query (``query`` = 0-based index).

    Raises:
        RuntimeError: the FLOPs window is infeasible (no legal draw).
        ConfigError: a non-positive ``max_queries`` / ``max_seconds``.
    """

    name = "rea"
    KEYS = {"num_queries": Key(100, "evaluator queries (distinct architectures)", int, (1, None), unit="count"),
            "population": Key(50, "population kept (the oldest dies)", int, (2, None), unit="count"),
            "sample_size": Key(10, "tournament size", int, (1, None), unit="count"),
            "mutation_prob": Key(None, "per-gene mutation probability (null = 1 / number of genes)",
                                 float, (0, 1))}

    @classmethod
    def budget_settings(cls, budget: int) -> dict:
        q = int(budget)
        p = min(50, max(5, q // 20))
        return {"num_queries": q, "population": p, "sample_size": max(2, p // 5)}

    def __init__(self, num_queries: int = 1000, population: int = 50, sample_size: int = 10,
                 mutation_prob: float | None = None, flops_range=None, seed=0,
                 sampler: Callable | None = None, max_tries: int = DEFAULT_MAX_TRIES,
                 progress: bool = False, callback: Callable | None = None,
                 max_queries: int | None = None, max_seconds: float | None = None):
        if num_queries < 1:
            raise ValueError(f"num_queries must be >= 1, got {num_queries}")
        if population < 1 or sample_size < 1:
            raise ValueError(f"population and sample_size must be >= 1, got {population}, {sample_size}")
        if mutation_prob is not None and not 0.0 < mutation_prob <= 1.0:
            raise ValueError(f"mutation_prob must be in (0, 1], got {mutation_prob}")
        self.num_queries = int(num_queries)
        self.population = int(population)
        self.sample_size = int(sample_size)
        self.mutation_prob = None if mutation_prob is None else float(mutation_prob)
        super().__init__(flops_range, seed, sampler, max_tries, progress, callback,
                         max_queries, max_seconds)

    def _mutant(self, cache: QueryCache, parent: tuple, prob: float, rng: np.random.Generator):
        """A legal, unseen mutant of ``parent`` differing in >= 1 gene, or ``None``."""
        return cache.sample_legal(lambda r: cache.space.mutate(parent, prob, r), rng, exclude={parent},
                                  max_tries=self.max_tries)

    def search(self, space, evaluator) -> SearchResult:
        """Run aging evolution; returns the best architecture and the full query history."""
        rng = np.random.default_rng(self.seed)
        draw = self.sampler or space.sample
        prob = self.mutation_prob if self.mutation_prob is not None else 1.0 / max(space.num_genes, 1)
        cache = self._query_cache(space, evaluator, total=self.num_queries, desc="rea")
        # 1. random initial population, one batch
        init, taken = [], set()
        for _ in range(min(self.population, self.num_queries)):
            arch = cache.sample_legal(draw, rng, exclude=taken, max_tries=self.max_tries)
            if arch is None:
                break
            init.append(arch)
            taken.add(arch)
        cache.evaluate(init)
        pop = deque(init)  # oldest on the left
        # 2. cycles: tournament, mutate, age out the oldest
        while len(cache.history) < self.num_queries and pop:
            k = min(self.sample_size, len(pop))
            idx = rng.choice(len(pop), size=k, replace=False)
            parent = max((pop[int(i)] for i in idx),
                         key=lambda a: _score_key(cache.results[a]["score"]))
            child = self._mutant(cache, parent, prob, rng)
            if child is None:
                child = cache.sample_legal(draw, rng, max_tries=self.max_tries)
                if child is None:  # reachable space exhausted
                    break
            cache.evaluate([child])
            pop.append(child)
            if len(pop) > self.population:
                pop.popleft()
        return self._result(cache)
