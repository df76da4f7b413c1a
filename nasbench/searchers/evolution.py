"""SPOS/BCNet-style evolutionary search under a FLOPs window.

Source: METHODS.md 1.4 ("EA", BCNetV2 ``searcher/_evolution_searcher.py``,
the SPOS evolution searcher it derives from) and 2.4 (BN-NAS uses the same
EA with population 50, top-k 10, 25 mutants with p=0.1, 25 children,
20 epochs).

One epoch:

1. top the population up to ``population`` with legal, unseen samples
   (``sampler(rng)`` if given, e.g. the BCNet prior, else ``space.sample``);
2. score the population in one ``evaluator.evaluate`` batch (cached);
3. merge it into the running top-k (the best ``topk`` of everything scored);
4. build ``mutation_num`` mutants of random top-k members (each gene redrawn
   with probability ``mutation_prob``) and ``crossover_num`` uniform
   crossover children of two random top-k parents; a candidate is kept only
   if it is legal, unseen and not already produced; at most 10x the wanted
   number of tries each;
5. next population = mutants + children.

Deviation: the original evaluates candidates while generating them, so the
last epoch's mutants are scored too; here step 4 is skipped after the last
epoch (those candidates would never be merged into the top-k), so a run makes
at most ``epochs * population`` queries.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .base import SearchResult, Searcher
from .random import DEFAULT_MAX_TRIES, QueryCache

__all__ = ["EvolutionSearcher"]


class EvolutionSearcher(Searcher):
    """Evolutionary search (METHODS.md 1.4 / 2.4); maximises ``score``.

    Args:
        population: population size after top-up (``population_num``).
        topk: number of parents kept (``select_num``).
        mutation_num: mutants built per epoch.
        mutation_prob: per-gene redraw probability of a mutation.
        crossover_num: crossover children built per epoch.
        epochs: number of epochs (each scores one population).
        flops_range: ``(lo, hi)`` in MACs; ``None`` ends are unbounded.
        seed: int, ``np.random.Generator`` or ``None``; same seed, same result.
        sampler: optional ``sampler(rng) -> arch`` for the top-up draws
            (e.g. :class:`~nasbench.searchers.prior.PriorSampler`).
        max_tries: draws per random top-up before declaring the window
            infeasible.
        progress, callback: see :class:`~nasbench.searchers.random.QueryCache`.
        max_queries, max_seconds: budgets (queries, seconds) enforced by
            :meth:`~nasbench.searchers.base.Searcher.run`; ``search`` ignores them.

    Raises:
        RuntimeError: the FLOPs window is infeasible (no legal draw).
        ConfigError: a non-positive ``max_queries`` / ``max_seconds``.
    """

    name = "evolution"

    def __init__(self, population: int = 50, topk: int = 10, mutation_num: int = 25,
                 mutation_prob: float = 0.1, crossover_num: int = 25, epochs: int = 20,
                 flops_range=None, seed=0, sampler: Callable | None = None,
                 max_tries: int = DEFAULT_MAX_TRIES, progress: bool = False,
                 callback: Callable | None = None,
                 max_queries: int | None = None, max_seconds: float | None = None):
        if population < 1 or topk < 1 or epochs < 1:
            raise ValueError(f"population, topk and epochs must be >= 1, got "
                             f"{population}, {topk}, {epochs}")
        if mutation_num < 0 or crossover_num < 0:
            raise ValueError("mutation_num and crossover_num must be >= 0")
        if not 0.0 <= mutation_prob <= 1.0:
            raise ValueError(f"mutation_prob must be in [0, 1], got {mutation_prob}")
        self.population = int(population)
        self.topk = int(topk)
        self.mutation_num = int(mutation_num)
        self.mutation_prob = float(mutation_prob)
        self.crossover_num = int(crossover_num)
        self.epochs = int(epochs)
        super().__init__(flops_range, seed, sampler, max_tries, progress, callback,
                         max_queries, max_seconds)

    # -- operators --------------------------------------------------------------
    def _offspring(self, cache: QueryCache, parents: list, num: int, make: Callable,
                   rng: np.random.Generator, taken: set) -> list:
        """Up to ``num`` legal, unseen, new candidates from ``make(parents, rng)``."""
        out = []
        if not parents:
            return out
        for _ in range(10 * num):
            if len(out) >= num:
                break
            cand = cache.space.validate(make(parents, rng))
            if cand in taken or cache.seen(cand) or not cache.legal(cand):
                continue
            out.append(cand)
            taken.add(cand)
        return out

    def _mutant(self, space):
        def make(parents, rng):
            p = parents[int(rng.integers(len(parents)))]
            return space.mutate(p, self.mutation_prob, rng)
        return make

    def _child(self, space):
        def make(parents, rng):
            i, j = rng.integers(len(parents), size=2)
            return space.crossover(parents[int(i)], parents[int(j)], rng)
        return make

    # -- search -----------------------------------------------------------------
    def search(self, space, evaluator) -> SearchResult:
        """Run the EA; returns the best architecture and the full query history."""
        rng = np.random.default_rng(self.seed)
        draw = self.sampler or space.sample
        cache = self._query_cache(space, evaluator, total=self.epochs * self.population, desc="evolution")
        candidates: list = []
        topk: list = []
        for epoch in range(self.epochs):
            # 1. top up with legal random samples
            taken = set(candidates)
            while len(candidates) < self.population:
                arch = cache.sample_legal(draw, rng, exclude=taken, max_tries=self.max_tries)
                if arch is None:  # space (or sampler support) exhausted
                    break
                candidates.append(arch)
                taken.add(arch)
            # 2. score; 3. merge into top-k
            cache.evaluate(candidates)
            topk = cache.top_k(self.topk, list(dict.fromkeys(topk + candidates)))
            if epoch == self.epochs - 1:
                break
            # 4. mutation and crossover from the top-k; 5. next population
            taken = set()
            mutants = self._offspring(cache, topk, self.mutation_num, self._mutant(space), rng, taken)
            children = self._offspring(cache, topk, self.crossover_num, self._child(space), rng, taken)
            candidates = mutants + children
        return self._result(cache)
