"""Constrained bi-objective NSGA-II (pymoo 0.6) over a discrete search space.

Source: METHODS.md 1.4 (BCNet V1 ran the NSGA-Net engine on pymoo: pop 40,
integer genes, FLOPs budget); Deb et al. 2002 for NSGA-II itself.

Encoding: gene ``i`` of a pymoo individual is the *index* into
``space.choices(i)`` (integers in ``[0, len(choices(i)) - 1]``).
Objectives (both minimised): ``-score`` and ``flops`` (MACs).
Constraint: the FLOPs window as ``G <= 0`` with
``G = [(lo - f) / lo, (f - hi) / hi]`` (relative violation, so the
constraint violation is O(1) whatever the MAC scale). Infeasible
individuals are **not** evaluated: they get ``F = [1e30, flops]`` and are
ranked by pymoo's constraint-domination (feasible first, then by CV).

Operators: SBX (eta 3) and polynomial mutation (eta 3) on floats, rounded
to integers by ``RoundingRepair`` (pymoo's recommended recipe for integer
variables), duplicate elimination on; the initial population comes from
``sampler(rng)`` (default ``space.sample``) filtered to legal, distinct
architectures.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..evaluators.query import DEFAULT_MAX_TRIES, score_key as _score_key
from ..registry import SEARCHERS, Key
from .base import SearchContext, SearchResult, Searcher

__all__ = ["NSGA2Searcher", "pareto_front"]

_INFEASIBLE_F = 1e30


def pareto_front(records: list) -> list:
    """Non-dominated records for (maximise ``score``, minimise ``flops``).

    ``records``: dicts with ``arch``, ``score``, ``flops``. Returns
    ``{"arch", "score", "flops"}`` dicts (``score`` as float, ``flops`` as
    given) sorted by increasing FLOPs, records with equal FLOPs in input order;
    exact duplicates in (score, flops) are all kept. NaN scores are dropped; a
    NaN ``flops`` never dominates nor is dominated (kept, listed last).

    A record is dominated when another has score >= and FLOPs <=, one of them
    strictly. One sort and one sweep, O(n log n), so it also serves whole
    benchmarks (the true front of :func:`nasbench.bench_search.plot_pareto`).
    """
    recs = [r for r in records if _score_key(r["score"]) > -np.inf]
    if not recs:
        return []
    s = [float(r["score"]) for r in recs]
    f = np.array([float(r["flops"]) for r in recs])
    nan = np.isnan(f)
    order = np.flatnonzero(~nan)
    order = order[np.argsort(f[order], kind="stable")].tolist()
    f = f.tolist()
    # sweep over groups of equal FLOPs, cheapest first: a record survives iff its score is the
    # best of its group and beats every score at strictly lower FLOPs
    keep, best_below, k = [], -math.inf, 0
    while k < len(order):
        end = k + 1
        while end < len(order) and f[order[end]] == f[order[k]]:
            end += 1
        group = order[k:end]
        top = max(s[i] for i in group)
        if top > best_below:
            keep += [i for i in group if s[i] == top]
            best_below = top
        k = end
    keep += np.flatnonzero(nan).tolist()
    return [{"arch": recs[i]["arch"], "score": s[i], "flops": recs[i]["flops"]} for i in keep]


@SEARCHERS.register("nsga2", aliases=("nsga-ii", "nsgaii"))
class NSGA2Searcher(Searcher):
    """NSGA-II on (-score, flops) with a FLOPs-window constraint.

    Args:
        pop_size: pymoo population size (offspring per generation, too).
        generations: number of generations (``n_gen`` termination); the
            initial population counts as generation 1.
        flops_range: ``(lo, hi)`` in MACs; ``None`` ends are unbounded.
        seed: int, ``np.random.Generator`` or ``None``; same seed, same result
            (pymoo is seeded with an int drawn from it).
        sampler: optional ``sampler(rng) -> arch`` for the initial population.
        eta_crossover, eta_mutation: SBX / PM distribution indices.
        max_tries: draws per initial individual before declaring the window
            infeasible.
        progress, callback: see :class:`~nasbench.evaluators.query.QueryCache`.
        max_queries, max_seconds: budgets (queries, seconds) enforced by
            :meth:`~nasbench.searchers.base.Searcher.run`; ``search`` ignores them.

    ``search`` / ``run`` return ``SearchResult`` with ``best_arch`` = highest
    score among evaluated (hence feasible) architectures and ``pareto`` = the
    non-dominated set of all of them (:func:`pareto_front`; after a budget
    stop of ``run``, of the truncated history).

    Raises:
        RuntimeError: the FLOPs window is infeasible (no legal draw).
        ConfigError: a non-positive ``max_queries`` / ``max_seconds``.
    """

    name = "nsga2"
    finds_pareto_front = True
    KEYS = {"population": Key(50, "population size (pop_size)", int, (2, None), unit="count"),
            "epochs": Key(20, "generations", int, (1, None), unit="generations")}

    @classmethod
    def from_config(cls, settings: dict, ctx: SearchContext) -> "NSGA2Searcher":
        """``population`` -> ``pop_size``, ``epochs`` -> ``generations``."""
        return cls(pop_size=settings["population"], generations=settings["epochs"], flops_range=ctx.flops_range,
                   seed=int(ctx.seed), progress=ctx.progress, max_seconds=ctx.max_seconds,
                   max_queries=ctx.max_queries)

    @classmethod
    def budget_settings(cls, budget: int) -> dict:
        q = int(budget)
        p = min(40, max(4, q // 10))
        return {"population": p, "epochs": max(2, 4 * -(-q // p))}

    def __init__(self, pop_size: int = 40, generations: int = 20, flops_range=None, seed=0,
                 sampler: Callable | None = None, eta_crossover: float = 3.0,
                 eta_mutation: float = 3.0, max_tries: int = DEFAULT_MAX_TRIES,
                 progress: bool = False, callback: Callable | None = None,
                 max_queries: int | None = None, max_seconds: float | None = None):
        if pop_size < 2 or generations < 1:
            raise ValueError(f"need pop_size >= 2 and generations >= 1, got {pop_size}, {generations}")
        self.pop_size = int(pop_size)
        self.generations = int(generations)
        super().__init__(flops_range, seed, sampler, max_tries, progress, callback,
                         max_queries, max_seconds)
        self.eta_crossover = float(eta_crossover)
        self.eta_mutation = float(eta_mutation)

    def _result(self, cache, stopped: str = "done") -> SearchResult:
        """Result with ``pareto`` = :func:`pareto_front` of the (possibly truncated) history."""
        return cache.result(pareto=pareto_front(cache.history), stopped=stopped)

    def search(self, space, evaluator) -> SearchResult:
        """Run NSGA-II; returns the best architecture, the full query history and the front."""
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.core.problem import Problem
        from pymoo.core.sampling import Sampling
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM
        from pymoo.operators.repair.rounding import RoundingRepair
        from pymoo.optimize import minimize

        rng = np.random.default_rng(self.seed)
        pymoo_seed = int(rng.integers(2**31 - 1))
        draw = self.sampler or space.sample
        cache = self._query_cache(space, evaluator, total=self.pop_size * self.generations, desc="nsga2")
        L = space.num_genes
        choices = [list(space.choices(i)) for i in range(L)]
        lo, hi = self.flops_range
        n_constr = int(lo is not None) + int(hi is not None)

        def to_arch(x) -> tuple:
            idx = np.clip(np.rint(np.asarray(x, dtype=float)).astype(int), 0,
                          [len(c) - 1 for c in choices])
            return tuple(int(choices[i][k]) for i, k in enumerate(idx))

        def to_x(arch) -> list:
            return [choices[i].index(a) for i, a in enumerate(arch)]

        class _Problem(Problem):
            def __init__(self):
                super().__init__(n_var=L, n_obj=2, n_ieq_constr=n_constr,
                                 xl=np.zeros(L), xu=np.array([len(c) - 1 for c in choices]),
                                 vtype=int)

            def _evaluate(self, X, out, *args, **kwargs):
                archs = [to_arch(x) for x in X]
                flops = np.array([float(cache.flops(a)) for a in archs])
                legal = [cache.legal(a) for a in archs]
                metrics = dict(zip([a for a, ok in zip(archs, legal) if ok],
                                   cache.evaluate([a for a, ok in zip(archs, legal) if ok])))
                score = np.array([_score_key(metrics[a]["score"]) if ok else -_INFEASIBLE_F
                                  for a, ok in zip(archs, legal)])
                score = np.where(np.isfinite(score), score, -_INFEASIBLE_F)
                out["F"] = np.column_stack([-score, flops])
                if n_constr:
                    g = []
                    if lo is not None:
                        g.append((lo - flops) / max(lo, 1.0))
                    if hi is not None:
                        g.append((flops - hi) / max(hi, 1.0))
                    out["G"] = np.column_stack(g)

        outer = self

        class _ArchSampling(Sampling):
            """Initial population: legal, distinct draws of the sampler."""

            def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
                taken, rows = set(), []
                for _ in range(n_samples):
                    arch = cache.sample_legal(draw, rng, exclude=taken, max_tries=outer.max_tries)
                    if arch is None:
                        break
                    taken.add(arch)
                    rows.append(to_x(arch))
                return np.array(rows, dtype=float).reshape(-1, L)

        algorithm = NSGA2(
            pop_size=self.pop_size,
            sampling=_ArchSampling(),
            crossover=SBX(prob=1.0, eta=self.eta_crossover, vtype=float, repair=RoundingRepair()),
            mutation=PM(prob=1.0, eta=self.eta_mutation, vtype=float, repair=RoundingRepair()),
            eliminate_duplicates=True,
        )
        minimize(_Problem(), algorithm, ("n_gen", self.generations), seed=pymoo_seed,
                 verbose=False, save_history=False)
        return self._result(cache)
