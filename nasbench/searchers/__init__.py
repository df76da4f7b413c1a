"""Searchers: random search, BCNet/SPOS evolution, regularized evolution (REA), local
search, NSGA-II, the BCNet prior, and search on tabular benchmarks (:mod:`.bench_search`).

Every searcher is registered in :data:`nasbench.registry.SEARCHERS` (``search.type``;
aliases such as ``ea``), declares its config keys (``KEYS``) and is built from a
config section by :func:`build_searcher`; every searcher has
``search(space, evaluator) -> SearchResult`` and ``run(...)`` under budgets.
"""
from .base import Evaluator, SearchContext, SearchResult, Searcher, build_searcher
from .evolution import EvolutionSearcher
from .local import LocalSearcher
from .nsga2 import NSGA2Searcher, pareto_front
from .prior import PriorSampler, expected_flops, fit_prior, loss_table
from .random import RandomSearcher
from .rea import REASearcher

__all__ = [
    "Evaluator", "Searcher", "SearchContext", "SearchResult", "RandomSearcher", "EvolutionSearcher",
    "NSGA2Searcher", "pareto_front", "fit_prior", "loss_table", "expected_flops", "PriorSampler",
    "build_searcher", "REASearcher", "LocalSearcher",
]
