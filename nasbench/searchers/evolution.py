"""SPOS/BCNet-style evolutionary search under a FLOPs window.

Source: METHODS.md 1.4 ("EA", BCNetV2 ``searcher/_evolution_searcher.py``,
the SPOS evolution searcher it derives from) and 2.4 (BN-NAS uses the same
EA with population 50, top-k 10, 25 mutants with p=0.1, 25 children,
20 epochs).

One epoch:

1. top the population up to ``population`` with legal, unseen samples
   (``sampler(rng)`` if given, e.g. the BCNet prior, else ``space.sample``);
2. score the population in one ``evaluator.evaluate`` batch (cached);
3. merge it into the running top-k (the best ``topk`` of everything scored);
4. build ``mutation_num`` mutants of random top-k members (each gene redrawn
   with probability ``mutation_prob``) and ``crossover_num`` uniform
   crossover children of two random top-k parents; a candidate is kept only
   if it is legal, unseen and not already produced; at most 10x the wanted
   number of tries each;
5. next population = mutants + children.

Deviation: the original evaluates candidates while generating them, so the
last epoch's mutants are scored too; here step 4 is skipped after the last
epoch (those candidates would never be merged into the top-k), so a run makes
at most ``epochs * population`` queries.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import ConfigError
from ..evaluators.query import DEFAULT_MAX_TRIES, QueryCache
from ..registry import SEARCHERS, Key
from .base import SearchContext, SearchResult, Searcher

__all__ = ["EvolutionSearcher"]


@SEARCHERS.register("evolution", aliases=("ea", "evo"))
class EvolutionSearcher(Searcher):
    """Evolutionary search (METHODS.md 1.4 / 2.4); maximises ``score``.

    Args:
        population: population size after top-up (``population_num``).
        topk: number of parents kept (``select_num``).
        mutation_num: mutants built per epoch.
        mutation_prob: per-gene redraw probability of a mutation.
        crossover_num: crossover children built per epoch.
        epochs: number of epochs (each scores one population).
        flops_range: ``(lo, hi)`` in MACs; ``None`` ends are unbounded.
        seed: int, ``np.random.Generator`` or ``None``; same seed, same result.
        sampler: optional ``sampler(rng) -> arch`` for the top-up draws
            (e.g. :class:`~nasbench.searchers.prior.PriorSampler`).
        max_tries: draws per random top-up before declaring the window
            infeasible.
        progress, callback: see :class:`~nasbench.evaluators.query.QueryCache`.
        max_queries, max_seconds: budgets (queries, seconds) enforced by
            :meth:`~nasbench.searchers.base.Searcher.run`; ``search`` ignores them.

    Raises:
        RuntimeError: the FLOPs window is infeasible (no legal draw).
        ConfigError: a non-positive ``max_queries`` / ``max_seconds``.
    """

    name = "evolution"
    KEYS = {
        "population": Key(50, "candidates per generation", int, (1, None), unit="count"),
        "topk": Key(10, "best candidates kept as parents", int, (1, None), unit="count"),
        "mutation_num": Key(25, "children made by mutation per generation", int, (0, None), unit="count"),
        "mutation_prob": Key(0.1, "per-gene mutation probability", float, (0, 1)),
        "crossover_num": Key(25, "children made by crossover per generation", int, (0, None), unit="count"),
        "epochs": Key(20, "generations", int, (1, None), unit="generations"),
        "prior": Key(True, "BCNet's prior initial population, fitted to the supernet's loss records "
                     "(used when the algorithm kept records)", bool),
        "prior_steps": Key(2000, "optimizer steps of prior learning", int, (1, None), unit="steps"),
        "prior_lr": Key(0.01, "learning rate of prior learning", float, (0, None)),
        "prior_target_ratio": Key(0.4, "prior's FLOPs target as a fraction of flops_budget "
                                  "(BCNet code's 0.4)", float, (0, None)),
    }

    @classmethod
    def from_config(cls, settings: dict, ctx: SearchContext) -> "EvolutionSearcher":
        """With ``prior`` and loss records in ``ctx``, the initial population is drawn from
        BCNet's prior fitted to them (METHODS.md 1.3 step 4; needs a FLOPs budget)."""
        s = dict(settings)
        use_prior = s.pop("prior")
        prior = {k: s.pop(k) for k in ("prior_steps", "prior_lr", "prior_target_ratio")}
        sampler = None
        if use_prior and ctx.loss_history:
            from .prior import PriorSampler, fit_prior
            if ctx.flops_range is None or ctx.flops_range[1] is None:
                raise ConfigError("search.prior needs search.flops_budget (the prior targets a FLOPs budget)")
            space = ctx.space
            choices = [list(space.choices(i)) for i in range(space.num_genes)]
            logits = fit_prior(ctx.loss_history, space.layer_flops(), ctx.flops_range[1], choices,
                               steps=prior["prior_steps"], lr=prior["prior_lr"],
                               target_ratio=prior["prior_target_ratio"], seed=ctx.seed)
            sampler = PriorSampler(logits, choices)
            ctx.log("prior initial population fitted from %d loss records", len(ctx.loss_history))
        elif use_prior:
            ctx.log("search.prior: the supernet kept no loss records; uniform initial population")
        return cls(**s, sampler=sampler, flops_range=ctx.flops_range, seed=int(ctx.seed),
                   progress=ctx.progress, max_seconds=ctx.max_seconds, max_queries=ctx.max_queries)

    @classmethod
    def budget_settings(cls, budget: int) -> dict:
        """Population ``p = min(50, max(4, Q // 10))``, top-k ``p // 5``, half mutants and half
        children, ``4 * ceil(Q / p)`` generations (the query budget cuts the run), no prior."""
        q = int(budget)
        p = min(50, max(4, q // 10))
        return {**super().budget_settings(q), "population": p, "topk": max(2, p // 5), "mutation_num": p // 2,
                "mutation_prob": 0.1, "crossover_num": p - p // 2, "epochs": max(2, 4 * -(-q // p)),
                "prior": False}

    def __init__(self, population: int = 50, topk: int = 10, mutation_num: int = 25,
                 mutation_prob: float = 0.1, crossover_num: int = 25, epochs: int = 20,
                 flops_range=None, seed=0, sampler: Callable | None = None,
                 max_tries: int = DEFAULT_MAX_TRIES, progress: bool = False,
                 callback: Callable | None = None,
                 max_queries: int | None = None, max_seconds: float | None = None):
        if population < 1 or topk < 1 or epochs < 1:
            raise ValueError(f"population, topk and epochs must be >= 1, got "
                             f"{population}, {topk}, {epochs}")
        if mutation_num < 0 or crossover_num < 0:
            raise ValueError("mutation_num and crossover_num must be >= 0")
        if not 0.0 <= mutation_prob <= 1.0:
            raise ValueError(f"mutation_prob must be in [0, 1], got {mutation_prob}")
        self.population = int(population)
        self.topk = int(topk)
        self.mutation_num = int(mutation_num)
        self.mutation_prob = float(mutation_prob)
        self.crossover_num = int(crossover_num)
        self.epochs = int(epochs)
        super().__init__(flops_range, seed, sampler, max_tries, progress, callback,
                         max_queries, max_seconds)

    # -- operators --------------------------------------------------------------
    def _offspring(self, cache: QueryCache, parents: list, num: int, make: Callable,
                   rng: np.random.Generator, taken: set) -> list:
        """Up to ``num`` legal, unseen, new candidates from ``make(parents, rng)``."""
        out = []
        if not parents:
            return out
        for _ in range(10 * num):
            if len(out) >= num:
                break
            cand = cache.space.validate(make(parents, rng))
            if cand in taken or cache.seen(cand) or not cache.legal(cand):
                continue
            out.append(cand)
            taken.add(cand)
        return out

    def _mutant(self, space):
        def make(parents, rng):
            p = parents[int(rng.integers(len(parents)))]
            return space.mutate(p, self.mutation_prob, rng)
        return make

    def _child(self, space):
        def make(parents, rng):
            i, j = rng.integers(len(parents), size=2)
            return space.crossover(parents[int(i)], parents[int(j)], rng)
        return make

    # -- search -----------------------------------------------------------------
    def search(self, space, evaluator) -> SearchResult:
        """Run the EA; returns the best architecture and the full query history."""
        rng = np.random.default_rng(self.seed)
        draw = self.sampler or space.sample
        cache = self._query_cache(space, evaluator, total=self.epochs * self.population, desc="evolution")
        candidates: list = []
        topk: list = []
        for epoch in range(self.epochs):
            # 1. top up with legal random samples
            taken = set(candidates)
            while len(candidates) < self.population:
                arch = cache.sample_legal(draw, rng, exclude=taken, max_tries=self.max_tries)
                if arch is None:  # space (or sampler support) exhausted
                    break
                candidates.append(arch)
                taken.add(arch)
            # 2. score; 3. merge into top-k
            cache.evaluate(candidates)
            topk = cache.top_k(self.topk, list(dict.fromkeys(topk + candidates)))
            if epoch == self.epochs - 1:
                break
            # 4. mutation and crossover from the top-k; 5. next population
            taken = set()
            mutants = self._offspring(cache, topk, self.mutation_num, self._mutant(space), rng, taken)
            children = self._offspring(cache, topk, self.crossover_num, self._child(space), rng, taken)
            candidates = mutants + children
        return self._result(cache)
