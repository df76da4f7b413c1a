"""Local search (hill climbing with random restarts) under a query budget.

The variant of White et al. 2021 ("Exploring the loss landscape in neural
architecture search", UAI; "local search is a strong baseline for NAS"):

1. draw a random legal, unseen architecture (``sampler(rng)`` if given, else
   ``space.sample``) and query it;
2. its *neighbourhood* is every legal architecture that differs in exactly
   one gene (each gene set to each of its other allowed values);
3. **best-improvement** (default): query every unseen neighbour in one
   ``evaluator.evaluate`` batch, then move to the best neighbour (already
   queried neighbours count too, at no cost) if it is strictly better than
   the current architecture;
   **first-improvement** (``first_improvement=True``): visit the neighbours
   in a random order, querying the unseen ones one at a time, and move to the
   first strictly better one;
4. when no neighbour is strictly better (a local optimum), restart at step 1;
5. stop after ``num_queries`` distinct architectures were queried. When the
   remaining budget is smaller than the unseen neighbourhood, a random subset
   of it (of the remaining size) is queried. The search also stops early when
   no unseen legal architecture can be drawn (the space is exhausted).

Ties: the current architecture is left only for a *strictly* better score;
among equally good best neighbours the first in a random order wins.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..evaluators.query import DEFAULT_MAX_TRIES, QueryCache, score_key as _score_key
from ..registry import SEARCHERS, Key
from .base import SearchResult, Searcher

__all__ = ["LocalSearcher", "neighbours"]


def neighbours(space, arch) -> list:
    """Every architecture differing from ``arch`` in exactly one gene (gene order, then value order)."""
    arch = space.validate(arch)
    out = []
    for i in range(space.num_genes):
        for v in space.choices(i):
            v = int(v)
            if v != arch[i]:
                out.append(arch[:i] + (v,) + arch[i + 1:])
    return out


@SEARCHERS.register("local", aliases=("local_search",))
class LocalSearcher(Searcher):
    """Hill climbing over one-gene neighbourhoods with random restarts; maximises ``score``.

    Args:
        num_queries: number of distinct architectures to evaluate (budget).
        first_improvement: ``False`` (default) = best-improvement (whole
            neighbourhood queried in one batch, move to the best);
            ``True`` = first-improvement (neighbours queried one at a time in
            random order, move to the first better one).
        flops_range: ``(lo, hi)`` in MACs; ``None`` ends are unbounded
            (illegal neighbours are skipped, never queried).
        seed: int, ``np.random.Generator`` or ``None``; same seed, same result.
        sampler: optional ``sampler(rng) -> arch`` for the (re)starts.
        max_tries: draws per random (re)start before the window is declared
            infeasible / the space exhausted.
        progress, callback: see :class:`~nasbench.evaluators.query.QueryCache`.
        max_queries, max_seconds: budgets (queries, seconds) enforced by
            :meth:`~nasbench.searchers.base.Searcher.run`; ``search`` ignores them.

    After ``search``, ``self.num_restarts`` holds the number of random starts
    (the first one included).

    Raises:
        RuntimeError: the FLOPs window is infeasible (no legal draw).
        ConfigError: a non-positive ``max_queries`` / ``max_seconds``.
    """

    name = "local"
    KEYS = {"num_queries": Key(100, "evaluator queries (distinct architectures)", int, (1, None), unit="count"),
            "first_improvement": Key(False, "move to the first better neighbour instead of the best", bool)}

    @classmethod
    def budget_settings(cls, budget: int) -> dict:
        return {"num_queries": int(budget), "first_improvement": False}

    def __init__(self, num_queries: int = 1000, first_improvement: bool = False, flops_range=None,
                 seed=0, sampler: Callable | None = None, max_tries: int = DEFAULT_MAX_TRIES,
                 progress: bool = False, callback: Callable | None = None,
                 max_queries: int | None = None, max_seconds: float | None = None):
        if num_queries < 1:
            raise ValueError(f"num_queries must be >= 1, got {num_queries}")
        self.num_queries = int(num_queries)
        self.first_improvement = bool(first_improvement)
        super().__init__(flops_range, seed, sampler, max_tries, progress, callback,
                         max_queries, max_seconds)
        self.num_restarts = 0

    def _step(self, cache: QueryCache, cur: tuple, rng: np.random.Generator):
        """One move from ``cur``: the better neighbour, or ``None`` at a local optimum."""
        def score(a):
            return _score_key(cache.results[a]["score"])

        nbrs = [n for n in neighbours(cache.space, cur) if cache.legal(n)]
        nbrs = [nbrs[int(i)] for i in rng.permutation(len(nbrs))]
        cur_score = score(cur)
        if self.first_improvement:
            for n in nbrs:
                if not cache.seen(n):
                    if len(cache.history) >= self.num_queries:
                        return None
                    cache.evaluate([n])
                if score(n) > cur_score:
                    return n
            return None
        new = [n for n in nbrs if not cache.seen(n)]
        new = new[:max(self.num_queries - len(cache.history), 0)]
        if new:
            cache.evaluate(new)
        known = [n for n in nbrs if cache.seen(n)]
        if not known:
            return None
        best = max(known, key=score)  # first of the random order wins ties
        return best if score(best) > cur_score else None

    def search(self, space, evaluator) -> SearchResult:
        """Run local search; returns the best architecture and the full query history."""
        rng = np.random.default_rng(self.seed)
        draw = self.sampler or space.sample
        cache = self._query_cache(space, evaluator, total=self.num_queries, desc="local")
        self.num_restarts = 0
        cur = None
        while len(cache.history) < self.num_queries:
            if cur is None:  # (re)start
                cur = cache.sample_legal(draw, rng, max_tries=self.max_tries)
                if cur is None:  # reachable space exhausted
                    break
                cache.evaluate([cur])
                self.num_restarts += 1
                continue
            cur = self._step(cache, cur, rng)
        return self._result(cache)
