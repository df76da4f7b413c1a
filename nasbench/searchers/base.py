"""Evaluator and Searcher protocols shared by supernets, predictors and benchmarks.

An *evaluator* maps architectures to metric dicts; every evaluator returns at
least ``score`` (higher is better) and ``flops`` (MACs). A *searcher* sees only
a :class:`~nasbench.spaces.base.SearchSpace` and an evaluator.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

__all__ = ["Evaluator", "Searcher", "SearchResult", "STOP_REASONS"]

#: values of :attr:`SearchResult.stopped`
STOP_REASONS = ("done", "max_queries", "max_seconds")


class Evaluator:
    """Scores architectures. Subclasses implement :meth:`evaluate`.

    ``evaluate(archs)`` takes a list of architecture tuples and returns one
    dict per architecture with at least ``score`` (float, higher is better)
    and ``flops`` (int, MACs); supernet evaluators add ``acc`` (percent) and
    ``loss``; benchmarks add their true metrics.
    """

    def evaluate(self, archs: Sequence[tuple]) -> list[dict]:
        raise NotImplementedError

    def __call__(self, archs):
        return self.evaluate(archs)


class _StopSearch(Exception):
    """Raised by a budgeted :class:`~nasbench.searchers.random.QueryCache` to unwind a search.

    ``reason`` is ``"max_queries"`` or ``"max_seconds"``; ``cache`` is the query
    cache whose history is kept. Only :meth:`Searcher.run` catches it.
    """

    def __init__(self, reason: str, cache):
        super().__init__(reason)
        self.reason = reason
        self.cache = cache


@dataclass
class _Limits:
    """Budget of one :meth:`Searcher.run` call: ``max_queries`` (queries) and
    ``deadline`` (``time.perf_counter()`` value in seconds), either may be None."""

    max_queries: int | None = None
    deadline: float | None = None


def _check_budget(name: str, value, integer: bool):
    """``value`` as a positive int/float, or None. Raises ConfigError otherwise."""
    from ..errors import ConfigError

    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a positive number or None, got {value!r}") from None
    if isinstance(value, bool) or math.isnan(v) or v <= 0 or math.isinf(v):
        raise ConfigError(f"{name} must be a positive finite number or None, got {value!r}")
    if integer:
        if v != int(v):
            raise ConfigError(f"{name} must be a whole number of queries, got {value!r}")
        return int(v)
    return v


class Searcher:
    """Options shared by every searcher; subclasses implement ``search(space, evaluator)``.

    ``search`` runs the algorithm to its natural end; :meth:`run` runs it under
    the ``max_queries`` / ``max_seconds`` budgets.

    Args:
        flops_range: ``(lo, hi)`` in MACs (either may be None); architectures
            outside it are never evaluated.
        seed: int seed (same seed, same search) or a ``np.random.Generator``.
        sampler: optional ``sampler(rng) -> arch`` replacing ``space.sample``
            (e.g. BCNet's prior, :class:`~nasbench.searchers.prior.PriorSampler`).
        max_tries: draws allowed to find a legal, unseen architecture.
        progress: show a tqdm bar.
        callback: ``callback(history)`` after every evaluated batch (every
            ``evaluator.evaluate`` call), with the history so far (list of
            records in query order; do not modify it).
        max_queries: optional cap on the number of distinct architectures
            evaluated (queries) by :meth:`run`; ``None`` = no cap.
        max_seconds: optional wall-clock budget of :meth:`run` in seconds,
            checked after every batch (a batch in progress is never
            interrupted, so a run may exceed it by one batch); ``None`` = no
            budget. Wall-clock stops are not reproducible; with a
            :class:`~nasbench.searchers.distributed.DistributedEvaluator`
            ranks may stop at different batches, so use ``max_queries`` there.

    Raises:
        ConfigError: ``max_queries`` not a positive whole number, or
            ``max_seconds`` not a positive finite number.
        ValueError: a bad ``flops_range``.
    """

    def __init__(self, flops_range=None, seed=0, sampler=None, max_tries: int = 10000,
                 progress: bool = False, callback=None, max_queries: int | None = None,
                 max_seconds: float | None = None):
        from .random import check_flops_range
        self.flops_range = check_flops_range(flops_range)
        self.seed = seed
        self.sampler = sampler
        self.max_tries = int(max_tries)
        self.progress = progress
        self.callback = callback
        self.max_queries = _check_budget("max_queries", max_queries, integer=True)
        self.max_seconds = _check_budget("max_seconds", max_seconds, integer=False)
        self._limits: _Limits | None = None  # set only while run() is active

    def search(self, space, evaluator) -> "SearchResult":
        """Run the search to its natural end (``max_queries`` / ``max_seconds`` are ignored)."""
        raise NotImplementedError

    def run(self, space, evaluator) -> "SearchResult":
        """:meth:`search` under the budgets ``max_queries`` (queries) and ``max_seconds`` (seconds).

        The search stops as soon as it would evaluate more than ``max_queries``
        distinct architectures (the batch that crosses the cap is cut, so the
        evaluator sees exactly ``max_queries`` architectures and the history
        holds exactly that many records) or, after a batch, once
        ``max_seconds`` have passed since ``run`` was called. ``callback`` is
        still called after every evaluated batch, including the cut one.

        Returns:
            :class:`SearchResult` with ``stopped`` = ``"done"`` (the search
            ended by itself within the budgets), ``"max_queries"`` or
            ``"max_seconds"``. When stopped early, ``best_arch`` /
            ``best_metrics`` are the highest ``score`` of the truncated history
            and ``pareto`` (searchers that compute one) is recomputed from it.

        Raises:
            RuntimeError: as :meth:`search` (e.g. infeasible FLOPs window).
        """
        deadline = None if self.max_seconds is None else time.perf_counter() + self.max_seconds
        self._limits = _Limits(self.max_queries, deadline)
        try:
            return self.search(space, evaluator)
        except _StopSearch as stop:
            stop.cache.close()
            return self._result(stop.cache, stopped=stop.reason)
        finally:
            self._limits = None

    # -- helpers for subclasses -------------------------------------------------------
    def _query_cache(self, space, evaluator, total: int | None = None, desc: str = "search"):
        """The :class:`~nasbench.searchers.random.QueryCache` of one search, with this
        searcher's FLOPs window, progress bar and callback, and the budgets when
        called from :meth:`run`. ``total``: expected queries (progress bar only)."""
        from .random import QueryCache

        lim = self._limits
        if lim is not None and lim.max_queries is not None and total is not None:
            total = min(total, lim.max_queries)
        return QueryCache(space, evaluator, self.flops_range, self.progress, self.callback,
                          total=total, desc=desc,
                          max_queries=None if lim is None else lim.max_queries,
                          deadline=None if lim is None else lim.deadline)

    def _result(self, cache, stopped: str = "done") -> "SearchResult":
        """:class:`SearchResult` of ``cache``'s history; subclasses add e.g. a Pareto front."""
        return cache.result(stopped=stopped)


@dataclass
class SearchResult:
    """Outcome of a search: best architecture, its metrics and every query.

    ``history`` holds one dict per evaluated architecture in query order:
    ``{"arch": tuple, "score": float, "flops": int, ...}``. ``stopped`` says why
    the search ended: ``"done"`` (by itself), ``"max_queries"`` or
    ``"max_seconds"`` (budget of :meth:`Searcher.run`).
    """

    best_arch: tuple
    best_metrics: dict
    history: list = field(default_factory=list)
    pareto: list = field(default_factory=list)
    stopped: str = "done"
