"""Searchers: random search, BCNet/SPOS evolution, NSGA-II, the BCNet prior,
and a distributed evaluator wrapper.

``build_searcher(name, **kwargs)`` builds a searcher by registry name
(``"random"``, ``"evolution"`` (alias ``"ea"``), ``"nsga2"``). Every searcher
has ``search(space, evaluator) -> SearchResult``.
Also registered: ``"rea"`` (regularized evolution) and ``"local"`` (local search).
"""
from .base import Evaluator, SearchResult
from .distributed import DistributedEvaluator
from .evolution import EvolutionSearcher
from .nsga2 import NSGA2Searcher, pareto_front
from .prior import PriorSampler, expected_flops, fit_prior, loss_table
from .random import QueryCache, RandomSearcher
from .rea import REASearcher
from .local import LocalSearcher

SEARCHERS = {
    "random": RandomSearcher,
    "evolution": EvolutionSearcher,
    "nsga2": NSGA2Searcher,
    "rea": REASearcher,
    "local": LocalSearcher,
}
_ALIASES = {"ea": "evolution", "evo": "evolution", "nsga-ii": "nsga2", "nsgaii": "nsga2"}


def build_searcher(name: str, **kwargs):
    """Searcher registered under ``name`` (case-insensitive), built with ``kwargs``.

    Raises:
        ConfigError: unknown name (the message lists the known ones) or a
            keyword the searcher does not accept.
    """
    from ..errors import ConfigError

    key = str(name).lower().strip()
    key = _ALIASES.get(key, key)
    if key not in SEARCHERS:
        raise ConfigError(f"unknown searcher {name!r}; known: {sorted(SEARCHERS)}")
    cls = SEARCHERS[key]
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"searcher {key!r}: {e}") from None


__all__ = [
    "Evaluator", "SearchResult", "QueryCache", "RandomSearcher", "EvolutionSearcher",
    "NSGA2Searcher", "pareto_front", "fit_prior", "loss_table", "expected_flops",
    "PriorSampler", "DistributedEvaluator", "SEARCHERS", "build_searcher",
    "REASearcher", "LocalSearcher",
]
