"""The query machinery every searcher shares: the query cache, FLOPs windows, budgets.

:class:`QueryCache` is the single place where a searcher touches an
evaluator. It enforces the rules common to all searchers of this package:

* **FLOPs window** ``[lo, hi]`` in MACs (either end may be ``None``), checked
  with ``space.flops(arch)`` *before* evaluation. Illegal architectures are
  never sent to the evaluator.
* **Batches**: ``evaluator.evaluate(list_of_archs)`` is called once per batch
  (one epoch of the EA, one generation of NSGA-II, ``batch_size`` draws of
  random search).
* **Cache**: an architecture is evaluated at most once per search; repeated
  requests are answered from the cache.
* **History**: every evaluated architecture is appended, in query order, as
  ``{**evaluator_metrics, "arch": tuple, "score": float, "flops": int,
  "query": int}``; ``flops`` falls back to ``space.flops(arch)`` when the
  evaluator does not return it.
* Optional ``progress=True`` (tqdm bar) and ``callback(history)`` after each
  batch.
* Optional budgets (set by :meth:`~nasbench.searchers.base.Searcher.run`):
  ``max_queries`` cuts the batch that would exceed it (only its first new
  architectures, up to the cap, are evaluated) and then stops the search;
  ``deadline`` (a ``time.perf_counter()`` value, seconds) stops it after the
  first batch that ends past it. Stopping raises an internal exception that
  ``Searcher.run`` turns into a :class:`SearchResult` with ``stopped`` set.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Iterable, Sequence

import numpy as np

from dataclasses import dataclass, field

__all__ = ["QueryCache", "SearchResult", "StopSearch", "check_flops_range", "is_legal_flops", "score_key",
           "STOP_REASONS", "DEFAULT_MAX_TRIES"]

#: values of :attr:`SearchResult.stopped`
STOP_REASONS = ("done", "max_queries", "max_seconds")

#: Default number of draws tried before a FLOPs window is declared infeasible.
DEFAULT_MAX_TRIES = 10_000


def check_flops_range(flops_range) -> tuple:
    """Normalise ``flops_range`` to ``(lo, hi)`` (MACs; ``None`` = unbounded).

    Accepts ``None``, a pair, or a dict ``{"lo":..., "hi":...}``.
    Raises ``ValueError`` when ``lo > hi`` or a bound is negative/not a number.
    """
    if flops_range is None:
        return (None, None)
    if isinstance(flops_range, dict):
        flops_range = (flops_range.get("lo"), flops_range.get("hi"))
    try:
        lo, hi = flops_range
    except (TypeError, ValueError):
        raise ValueError(f"flops_range must be (lo, hi) in MACs, got {flops_range!r}") from None
    lo = None if lo is None else float(lo)
    hi = None if hi is None else float(hi)
    for name, v in (("lo", lo), ("hi", hi)):
        if v is not None and (math.isnan(v) or v < 0):
            raise ValueError(f"flops_range {name}={v} must be a non-negative number or None")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"flops_range lo={lo:g} > hi={hi:g} MACs: the window is empty")
    return (lo, hi)


def is_legal_flops(flops: float, flops_range) -> bool:
    """True when ``flops`` (MACs) lies in the closed window ``flops_range``."""
    lo, hi = flops_range
    return (lo is None or flops >= lo) and (hi is None or flops <= hi)


def score_key(score) -> float:
    """Sort key of a score: NaN/None rank below every real score."""
    try:
        s = float(score)
    except (TypeError, ValueError):
        return -math.inf
    return -math.inf if math.isnan(s) else s


class QueryCache:
    """Evaluator front-end shared by all searchers (see the module docstring).

    Args:
        space: a :class:`~nasbench.spaces.base.SearchSpace`.
        evaluator: object with ``evaluate(list_of_archs) -> list[dict]``.
        flops_range: ``(lo, hi)`` in MACs, either may be ``None``.
        progress: show a tqdm bar over ``total`` queries.
        callback: ``callback(history)`` called after every evaluated batch.
        total: expected number of queries (only for the progress bar).
        max_queries: optional cap on distinct architectures evaluated (queries).
        deadline: optional ``time.perf_counter()`` value (seconds) after which
            the search is stopped at the end of the current batch.
    """

    def __init__(self, space, evaluator, flops_range=None, progress: bool = False,
                 callback: Callable | None = None, total: int | None = None,
                 desc: str = "search", max_queries: int | None = None,
                 deadline: float | None = None):
        self.space = space
        self.evaluator = evaluator
        self.flops_range = check_flops_range(flops_range)
        self.callback = callback
        self.max_queries = None if max_queries is None else int(max_queries)
        self.deadline = deadline
        self.results: dict[tuple, dict] = {}
        self.history: list[dict] = []
        self._flops: dict[tuple, int] = {}
        self._bar = None
        if progress:
            from tqdm.auto import tqdm
            self._bar = tqdm(total=total, desc=desc, unit="arch")

    # -- constraint -----------------------------------------------------------
    def flops(self, arch) -> int:
        """``space.flops(arch)`` in MACs, memoised."""
        arch = tuple(arch)
        f = self._flops.get(arch)
        if f is None:
            f = self._flops[arch] = self.space.flops(arch)
        return f

    def legal(self, arch) -> bool:
        """True when ``arch`` satisfies the FLOPs window (no evaluation)."""
        if self.flops_range == (None, None):
            return True
        return is_legal_flops(self.flops(arch), self.flops_range)

    def seen(self, arch) -> bool:
        """True when ``arch`` was already evaluated."""
        return tuple(arch) in self.results

    def sample_legal(self, draw: Callable, rng: np.random.Generator, exclude: Iterable = (),
                     max_tries: int = DEFAULT_MAX_TRIES):
        """Draw ``draw(rng)`` until an unseen, legal architecture not in ``exclude``.

        Returns the architecture tuple, or ``None`` when ``max_tries`` draws
        found only legal architectures that were already seen/excluded (the
        reachable space is exhausted).

        Raises:
            RuntimeError: no draw in ``max_tries`` satisfied the FLOPs window
                (and no legal architecture is known), i.e. the budget is
                infeasible for this space/sampler.
        """
        exclude = exclude if isinstance(exclude, (set, dict)) else set(exclude)
        found_legal = False
        for _ in range(max_tries):
            arch = self.space.validate(draw(rng))
            if not self.legal(arch):
                continue
            found_legal = True
            if arch in self.results or arch in exclude:
                continue
            return arch
        if not found_legal and not self.results and not exclude:
            lo, hi = self.flops_range
            raise RuntimeError(
                f"FLOPs budget infeasible: none of {max_tries} sampled architectures of "
                f"{getattr(self.space, 'name', 'space')} has FLOPs (MACs) in "
                f"[{'-inf' if lo is None else f'{lo:.6g}'}, {'inf' if hi is None else f'{hi:.6g}'}]; "
                f"widen flops_range or change the sampler")
        return None

    # -- evaluation -----------------------------------------------------------
    def evaluate(self, archs: Sequence) -> list[dict]:
        """Metrics of ``archs`` (one dict each, in order), evaluating the new ones.

        Unseen architectures are deduplicated and sent to the evaluator in one
        ``evaluate`` call; seen ones come from the cache.

        With budgets (see the module docstring) the call may instead end the
        search: when the unseen architectures do not fit in ``max_queries``,
        only the first ones that fit are evaluated (and passed to the
        callback) before stopping; after the batch, the search stops when
        ``deadline`` has passed.

        Raises:
            ValueError: an architecture violates the FLOPs window (a searcher
                bug: callers filter with :meth:`legal` first), or the
                evaluator returned the wrong number of results.
        """
        archs = [self.space.validate(a) for a in archs]
        new, pending = [], set()
        for a in archs:
            if a in self.results or a in pending:
                continue
            if not self.legal(a):
                raise ValueError(f"architecture {a} has {self.flops(a)} MACs, outside the FLOPs "
                                 f"window {self.flops_range}; it must not be evaluated")
            new.append(a)
            pending.add(a)
        cut = self.max_queries is not None and len(self.history) + len(new) > self.max_queries
        if cut:
            new = new[:self.max_queries - len(self.history)]
        if new:
            out = list(self.evaluator.evaluate(list(new)))
            if len(out) != len(new):
                raise ValueError(f"evaluator returned {len(out)} results for {len(new)} architectures")
            for a, m in zip(new, out):
                rec = dict(m)
                rec["arch"] = a
                rec["score"] = float(rec["score"]) if "score" in rec else float("nan")
                if rec.get("flops") is None:
                    rec["flops"] = self.flops(a)
                rec["query"] = len(self.history)
                self.results[a] = rec
                self.history.append(rec)
            if self._bar is not None:
                self._bar.update(len(new))
            if self.callback is not None:
                self.callback(self.history)
        if cut:
            raise StopSearch("max_queries", self)
        if self.deadline is not None and self.history and time.perf_counter() >= self.deadline:
            raise StopSearch("max_seconds", self)
        return [self.results[a] for a in archs]

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # -- results ----------------------------------------------------------------
    def best(self) -> dict | None:
        """History record with the highest score (first queried wins ties)."""
        if not self.history:
            return None
        return max(self.history, key=lambda r: score_key(r["score"]))

    def top_k(self, k: int, archs: Iterable | None = None) -> list[tuple]:
        """The ``k`` best evaluated architectures (of ``archs`` if given), by score."""
        pool = self.history if archs is None else [self.results[tuple(a)] for a in archs]
        ranked = sorted(pool, key=lambda r: (-score_key(r["score"]), r["query"]))
        return [r["arch"] for r in ranked[:k]]

    def result(self, pareto: list | None = None, stopped: str = "done") -> SearchResult:
        """:class:`SearchResult` with the best-scoring record, the full history and ``stopped``.

        Raises:
            RuntimeError: nothing was evaluated.
        """
        self.close()
        best = self.best()
        if best is None:
            raise RuntimeError("search evaluated no architecture")
        return SearchResult(best_arch=best["arch"], best_metrics=dict(best),
                            history=list(self.history), pareto=list(pareto or []), stopped=stopped)


class StopSearch(Exception):
    """Raised by a budgeted :class:`QueryCache` to unwind a search.

    ``reason`` is ``"max_queries"`` or ``"max_seconds"``; ``cache`` is the query
    cache whose history is kept. Only :meth:`Searcher.run` catches it.
    """

    def __init__(self, reason: str, cache):
        super().__init__(reason)
        self.reason = reason
        self.cache = cache


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
