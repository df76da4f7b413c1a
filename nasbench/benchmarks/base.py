"""Tabular benchmarks behind the common :class:`~nasbench.searchers.base.Evaluator` interface.

A tabular benchmark holds the true metrics of every architecture of its
search space, so any searcher can be run on exact ground truth, and supernet
rankings can be checked against it.
"""
from __future__ import annotations


import numpy as np

from ..errors import ArchError, NasbenchError
from ..searchers.base import Evaluator


class TabularBenchmark(Evaluator):
    """Exact metrics of every architecture of ``space``.

    Args:
        name: benchmark name, e.g. ``"channel_bench_macro/mobilenet"``.
        space: its :class:`~nasbench.spaces.base.SearchSpace` (keys via ``space.encode``).
        records: ``{key: metrics dict}``; every dict has ``metric`` and ``flops``.
        metric: the accuracy-like metric used as ``score`` (higher is better).

    ``query(arch)`` accepts a key string or an architecture tuple and returns a
    copy of its metrics; ``list(bench)`` gives every key.
    """

    def __init__(self, name, space, records: dict, metric: str = "mean_acc"):
        self.name, self.space, self.metric = name, space, metric
        self._records = records
        self._keys = list(records)
        self._sorted_scores = None
        self._by_flops = None

    # -- lookup ---------------------------------------------------------------
    def key(self, arch) -> str:
        """Benchmark key of ``arch`` (str or tuple); raises :class:`ArchError`."""
        key = self.space.encode(self.space.validate(arch))
        if key not in self._records:
            raise ArchError(f"{self.name}: architecture {key!r} is not in the benchmark")
        return key

    def query(self, arch) -> dict:
        """True metrics of ``arch`` (dict copy). Raises :class:`ArchError`."""
        return dict(self._records[self.key(arch)])

    def __iter__(self):
        return iter(self._keys)

    def __len__(self):
        return len(self._keys)

    def __contains__(self, arch):
        try:
            self.key(arch)
            return True
        except ArchError:
            return False

    # -- ranking --------------------------------------------------------------
    def rank(self, arch, metric: str | None = None) -> int:
        """1-based rank of ``arch`` by ``metric`` among all architectures (1 = best;
        ties share the best rank: 1 + number of strictly better architectures)."""
        metric = metric or self.metric
        if self._sorted_scores is None or metric != self.metric:
            scores = np.sort(np.array([r[metric] for r in self._records.values()]))
            if metric != self.metric:
                return int(len(scores) - np.searchsorted(scores, self.query(arch)[metric], side="right") + 1)
            self._sorted_scores = scores
        v = self.query(arch)[metric]
        return int(len(self._sorted_scores) - np.searchsorted(self._sorted_scores, v, side="right") + 1)

    def best(self, max_flops: float | None = None, min_flops: float | None = None,
             metric: str | None = None) -> tuple[str, dict]:
        """Best ``(key, metrics)`` by ``metric`` with FLOPs (MACs) in ``[min_flops, max_flops]``.

        Raises ``ValueError`` when no architecture satisfies the constraint.
        """
        metric = metric or self.metric
        constrained = max_flops is not None or min_flops is not None
        best_key, best_val = None, -np.inf
        for k, r in self._records.items():
            if constrained:
                f = r.get("flops")
                if f is None:
                    raise NasbenchError(f"{self.name}: the benchmark has no FLOPs for {k!r}; "
                                        "call best()/regret()/summary() without a FLOPs constraint")
                if (max_flops is not None and f > max_flops) or (min_flops is not None and f < min_flops):
                    continue
            if r[metric] > best_val:
                best_key, best_val = k, r[metric]
        if best_key is None:
            raise ValueError(f"{self.name}: no architecture has FLOPs in [{min_flops}, {max_flops}]")
        return best_key, dict(self._records[best_key])

    def regret(self, arch, max_flops: float | None = None, metric: str | None = None) -> float:
        """Best ``metric`` under ``max_flops`` minus that of ``arch`` (accuracy points)."""
        metric = metric or self.metric
        return float(self.best(max_flops, metric=metric)[1][metric] - self.query(arch)[metric])

    def summary(self, arch, max_flops: float | None = None) -> dict:
        """``{"name", metric, "rank", "regret"}`` of ``arch`` for result files."""
        q = self.query(arch)
        return {"name": self.name, self.metric: float(q[self.metric]), "rank": self.rank(arch),
                "regret": self.regret(arch, max_flops), "num_archs": len(self)}

    # -- Evaluator --------------------------------------------------------------
    def evaluate(self, archs) -> list[dict]:
        """True metrics of each architecture plus ``score`` = the benchmark metric."""
        out = []
        for a in archs:
            q = self.query(a)
            q["score"] = float(q[self.metric])
            out.append(q)
        return out
