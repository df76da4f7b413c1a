"""Tabular benchmarks behind the common :class:`~nasbench.searchers.base.Evaluator` interface.

A tabular benchmark holds the true metrics of every architecture of its
search space, so any searcher can be run on exact ground truth, and supernet
rankings can be checked against it.
"""
from __future__ import annotations


import numpy as np

from ..errors import ArchError, NasbenchError
from ..evaluators.base import Evaluator


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

    # -- baselines --------------------------------------------------------------
    def arch_table(self, space=None, metric: str | None = None) -> tuple[list, np.ndarray, np.ndarray]:
        """``(keys, flops, scores)`` of every architecture, keys in ascending (string) order.

        ``flops`` (float MACs) are ``space.flops(space.decode(key))`` when a search
        ``space`` is given (the definition a search's FLOPs window is checked with),
        else the benchmark's recorded ``flops``; NaN where unknown (no recorded
        FLOPs, or a space without a FLOPs model). ``scores`` are ``metric``
        (default: the benchmark metric).
        """
        metric = metric or self.metric
        keys = sorted(self._keys)
        scores = np.array([float(self._records[k][metric]) for k in keys])
        if space is not None:
            try:
                flops = np.array([float(space.flops(space.decode(k))) for k in keys])
            except NotImplementedError:
                flops = np.full(len(keys), np.nan)
        else:
            flops = np.array([np.nan if self._records[k].get("flops") is None else float(self._records[k]["flops"])
                              for k in keys])
        return keys, flops, scores

    def baselines(self, flops_lo: float | None = None, flops_hi: float | None = None, space=None) -> dict:
        """Trivial picks to judge a search result by, inside the FLOPs window ``[flops_lo, flops_hi]``.

        *Feasible* = FLOPs (MACs) in the closed window, as a searcher's
        ``flops_range`` check (``is_legal_flops``); either bound may be None
        (both None: every architecture). FLOPs are counted as :meth:`arch_table`
        does: with the search ``space`` as the search counts them, else as recorded.

        Returns ``{"largest_flops", "median", "optimum"}``, each
        ``{"arch": key, "mean_acc", self.metric (if it differs), "rank", "regret",
        "flops"}`` plus ``"params"`` as recorded (when the benchmark has them):

        * ``largest_flops``: the feasible architecture with the most MACs; ties
          go to the smallest key (string order), *not* to the better accuracy.
          None when the benchmark has no FLOPs and no window is given.
        * ``median``: the lower median of the feasible set by benchmark metric:
          feasible architectures sorted by (metric, key) ascending, element
          ``(n - 1) // 2`` (the exact median for odd ``n``, the lower of the two
          middle ones for even ``n``).
        * ``optimum``: the best feasible architecture by metric (ties: smallest key).

        ``rank`` is the rank among *all* architectures, as :meth:`rank` and
        :meth:`summary` count it; ``regret`` is the optimum's metric minus the
        architecture's (points, >= 0). :meth:`summary`'s regret is against the best
        under ``max_flops`` alone: the same number unless that best lies below
        ``flops_lo``.

        Raises:
            NasbenchError: a window on a benchmark without FLOPs.
            ValueError: no architecture in the window.
        """
        keys, flops, scores = self.arch_table(space)
        has_flops = not np.isnan(flops).any()
        if (flops_lo is not None or flops_hi is not None) and not has_flops:
            raise NasbenchError(f"{self.name}: the benchmark has no FLOPs for every architecture; "
                                "call baselines() without a FLOPs window")
        feasible = np.ones(len(keys), dtype=bool)
        if flops_lo is not None:
            feasible &= flops >= float(flops_lo)
        if flops_hi is not None:
            feasible &= flops <= float(flops_hi)
        idx = np.flatnonzero(feasible)  # ascending key order
        if idx.size == 0:
            raise ValueError(f"{self.name}: no architecture has FLOPs in [{flops_lo}, {flops_hi}]")
        by_score = idx[np.lexsort((idx, scores[idx]))]  # ascending (score, key)
        best = idx[np.flatnonzero(scores[idx] == scores[idx].max())[0]]  # best score, smallest key
        picks = {"largest_flops": idx[np.argmax(flops[idx])] if has_flops else None,  # argmax: first = smallest key
                 "median": by_score[(idx.size - 1) // 2], "optimum": best}
        out = {}
        for name, i in picks.items():
            if i is None:
                out[name] = None
                continue
            k, r = keys[i], self._records[keys[i]]
            e = {"arch": k, "mean_acc": float(scores[i])}
            e[self.metric] = float(scores[i])
            e.update({"rank": self.rank(k), "regret": float(scores[best] - scores[i]),
                      "flops": None if np.isnan(flops[i]) else int(flops[i])})
            if r.get("params") is not None:
                e["params"] = int(r["params"])
            out[name] = e
        return out

    # -- Evaluator --------------------------------------------------------------
    def evaluate(self, archs) -> list[dict]:
        """True metrics of each architecture plus ``score`` = the benchmark metric."""
        out = []
        for a in archs:
            q = self.query(a)
            q["score"] = float(q[self.metric])
            out.append(q)
        return out
