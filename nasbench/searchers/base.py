"""The Searcher protocol: a search algorithm that sees only a space and an evaluator.

A *searcher* asks an :class:`~nasbench.evaluators.base.Evaluator` (a supernet
scorer, a predictor or a tabular benchmark) about architectures of a
:class:`~nasbench.spaces.base.SearchSpace`, always through the
:class:`~nasbench.evaluators.query.QueryCache` (FLOPs window, cache, budgets).
Every searcher is registered in :data:`nasbench.registry.SEARCHERS` and owns
its config keys (``KEYS``); :func:`build_searcher` builds one from a ``search``
config section for ``tools/search.py`` and ``tools/bench_search.py`` alike.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..evaluators.base import Evaluator
from ..evaluators.query import (STOP_REASONS, QueryCache, SearchResult, StopSearch,
                                check_flops_range)
from ..registry import SEARCHERS

__all__ = ["Evaluator", "Searcher", "SearchResult", "SearchContext", "STOP_REASONS", "build_searcher"]


@dataclass
class SearchContext:
    """What a searcher may use besides its own settings when it is built from a config.

    Attributes:
        flops_range: ``(lo, hi)`` in MACs or None.
        seed: int seed of the search.
        progress: show a progress bar.
        max_seconds: wall-clock budget (seconds) or None.
        max_queries: query budget or None.
        space: the search space (e.g. for a prior over its genes).
        loss_history: ``[(arch, loss)]`` recorded during supernet training, lowest
            loss first (BCNet's prior initial population; empty when none).
        log: ``log(msg, *args)`` for informative messages (default: nothing).
    """

    flops_range: Any = None
    seed: int = 0
    progress: bool = False
    max_seconds: float | None = None
    max_queries: int | None = None
    space: Any = None
    loss_history: list = field(default_factory=list)
    log: Callable = lambda *a, **k: None


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
            :class:`~nasbench.evaluators.distributed.DistributedEvaluator`
            ranks may stop at different batches, so use ``max_queries`` there.

    Raises:
        ConfigError: ``max_queries`` not a positive whole number, or
            ``max_seconds`` not a positive finite number.
        ValueError: a bad ``flops_range``.
    """

    def __init__(self, flops_range=None, seed=0, sampler=None, max_tries: int = 10000,
                 progress: bool = False, callback=None, max_queries: int | None = None,
                 max_seconds: float | None = None):
        self.flops_range = check_flops_range(flops_range)
        self.seed = seed
        self.sampler = sampler
        self.max_tries = int(max_tries)
        self.progress = progress
        self.callback = callback
        self.max_queries = _check_budget("max_queries", max_queries, integer=True)
        self.max_seconds = _check_budget("max_seconds", max_seconds, integer=False)
        self._limits: _Limits | None = None  # set only while run() is active

    #: config keys of this searcher (see :class:`nasbench.registry.Key`)
    KEYS: dict = {}
    #: the searcher optimises accuracy and FLOPs jointly and reports a Pareto front
    finds_pareto_front = False

    @classmethod
    def from_config(cls, settings: dict, ctx: SearchContext) -> "Searcher":
        """The searcher of a ``search`` config section's type-specific ``settings``
        (its ``KEYS``) and the run's :class:`SearchContext`. Subclasses map key names
        to constructor arguments where they differ."""
        return cls(**settings, flops_range=ctx.flops_range, seed=int(ctx.seed), progress=ctx.progress,
                   max_seconds=ctx.max_seconds, max_queries=ctx.max_queries)

    @classmethod
    def budget_settings(cls, budget: int) -> dict:
        """Settings (this searcher's config keys) that spend about ``budget`` queries
        (``tools/bench_search.py``); the default is the declared defaults."""
        return {k: key.default for k, key in cls.KEYS.items()}

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
        except StopSearch as stop:
            stop.cache.close()
            return self._result(stop.cache, stopped=stop.reason)
        finally:
            self._limits = None

    # -- helpers for subclasses -------------------------------------------------------
    def _query_cache(self, space, evaluator, total: int | None = None, desc: str = "search"):
        """The :class:`~nasbench.evaluators.query.QueryCache` of one search, with this
        searcher's FLOPs window, progress bar and callback, and the budgets when
        called from :meth:`run`. ``total``: expected queries (progress bar only)."""
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


def build_searcher(section, ctx: SearchContext | None = None) -> Searcher:
    """The searcher of a ``search`` config section (``type`` + that type's keys).

    ``section`` may be a :class:`~nasbench.config.Config` section, a plain dict
    or a name (then the type's declared defaults are used). Keys the type does
    not declare, and bad values, are a :class:`~nasbench.errors.ConfigError`;
    keys common to every search (``flops_budget``, ``flops_min_ratio``,
    ``max_seconds``) are ignored here (they reach the searcher through ``ctx``).

    Raises:
        ConfigError: unknown type, unknown key or bad value.
    """
    from ..config import resolve_section
    if isinstance(section, str):
        section = {"type": section}
    section = resolve_section("search", section)
    cls = SEARCHERS.get(section["type"])
    settings = {k: v for k, v in section.items() if k in cls.KEYS}
    return cls.from_config(settings, ctx or SearchContext())
