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
