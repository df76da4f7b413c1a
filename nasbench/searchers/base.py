"""Evaluator and Searcher protocols shared by supernets, predictors and benchmarks.

An *evaluator* maps architectures to metric dicts; every evaluator returns at
least ``score`` (higher is better) and ``flops`` (MACs). A *searcher* sees only
a :class:`~nasbench.spaces.base.SearchSpace` and an evaluator.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence


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


class Searcher:
    """Options shared by every searcher; subclasses implement ``search(space, evaluator)``.

    Args:
        flops_range: ``(lo, hi)`` in MACs (either may be None); architectures
            outside it are never evaluated.
        seed: int seed (same seed, same search) or a ``np.random.Generator``.
        sampler: optional ``sampler(rng) -> arch`` replacing ``space.sample``
            (e.g. BCNet's prior, :class:`~nasbench.searchers.prior.PriorSampler`).
        max_tries: draws allowed to find a legal, unseen architecture.
        progress: show a tqdm bar.
        callback: ``callback(history)`` after every evaluated batch.
    """

    def __init__(self, flops_range=None, seed=0, sampler=None, max_tries: int = 10000,
                 progress: bool = False, callback=None):
        from .random import check_flops_range
        self.flops_range = check_flops_range(flops_range)
        self.seed = seed
        self.sampler = sampler
        self.max_tries = int(max_tries)
        self.progress = progress
        self.callback = callback

    def search(self, space, evaluator) -> "SearchResult":
        raise NotImplementedError


@dataclass
class SearchResult:
    """Outcome of a search: best architecture, its metrics and every query.

    ``history`` holds one dict per evaluated architecture in query order:
    ``{"arch": tuple, "score": float, "flops": int, ...}``.
    """

    best_arch: tuple
    best_metrics: dict
    history: list = field(default_factory=list)
    pareto: list = field(default_factory=list)
