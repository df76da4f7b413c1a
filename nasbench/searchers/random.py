"""Random search: uniform draws of legal, unseen architectures (baseline)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..evaluators.query import DEFAULT_MAX_TRIES, SearchResult
from ..registry import SEARCHERS, Key
from .base import Searcher

__all__ = ["RandomSearcher"]


@SEARCHERS.register("random")
class RandomSearcher(Searcher):
    """Uniform random search under a FLOPs window (baseline).

    Draws ``num_queries`` distinct legal architectures (``sampler(rng)`` if
    given, else ``space.sample(rng)``), evaluated in batches of
    ``batch_size``. Stops early when no unseen legal architecture can be
    drawn (small spaces).

    Args:
        num_queries: number of distinct architectures to evaluate.
        flops_range: ``(lo, hi)`` in MACs; ``None`` ends are unbounded.
        seed: int, ``np.random.Generator`` or ``None``; same seed, same result.
        batch_size: architectures per ``evaluator.evaluate`` call.
        sampler: optional ``sampler(rng) -> arch`` (e.g. a
            :class:`~nasbench.searchers.prior.PriorSampler`).
        max_tries: draws per architecture before giving up.
        progress, callback: see :class:`QueryCache`.
        max_queries, max_seconds: budgets (queries, seconds) enforced by
            :meth:`~nasbench.searchers.base.Searcher.run`; ``search`` ignores them.

    Raises:
        RuntimeError: the FLOPs window is infeasible (no legal draw).
        ConfigError: a non-positive ``max_queries`` / ``max_seconds``.
    """

    name = "random"
    KEYS = {"num_queries": Key(100, "evaluator queries (distinct architectures)", int, (1, None), unit="count"),
            "batch_size": Key(100, "architectures per evaluator call", int, (1, None), unit="count")}

    @classmethod
    def budget_settings(cls, budget: int) -> dict:
        return {"num_queries": int(budget), "batch_size": min(100, int(budget))}

    def __init__(self, num_queries: int = 1000, flops_range=None, seed=0, batch_size: int = 100,
                 sampler: Callable | None = None, max_tries: int = DEFAULT_MAX_TRIES,
                 progress: bool = False, callback: Callable | None = None,
                 max_queries: int | None = None, max_seconds: float | None = None):
        if num_queries < 1:
            raise ValueError(f"num_queries must be >= 1, got {num_queries}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.num_queries = int(num_queries)
        super().__init__(flops_range, seed, sampler, max_tries, progress, callback,
                         max_queries, max_seconds)
        self.batch_size = int(batch_size)

    def search(self, space, evaluator) -> SearchResult:
        rng = np.random.default_rng(self.seed)
        draw = self.sampler or space.sample
        cache = self._query_cache(space, evaluator, total=self.num_queries, desc="random")
        exhausted = False
        while len(cache.history) < self.num_queries and not exhausted:
            n = min(self.batch_size, self.num_queries - len(cache.history))
            batch, pending = [], set()
            while len(batch) < n:
                arch = cache.sample_legal(draw, rng, exclude=pending, max_tries=self.max_tries)
                if arch is None:
                    exhausted = True
                    break
                batch.append(arch)
                pending.add(arch)
            if batch:
                cache.evaluate(batch)
        return self._result(cache)
