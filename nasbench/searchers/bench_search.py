"""Searchers compared on tabular benchmarks: regret against queries, queries to the top 1 % / 0.1 %.

Entry point :func:`bench_search` (CLI: ``tools/bench_search.py``). For every
benchmark, every searcher and every seed ``0..S-1``, the searcher runs on the
benchmark's true metrics (a :class:`~nasbench.benchmarks.base.TabularBenchmark`
is an evaluator) with a budget of ``Q`` queries (distinct architectures), and
its query history is turned into

* **regret** after each query ``q = 1..Q``: the best true accuracy of the
  benchmark (among architectures with FLOPs <= ``flops_budget`` when a budget
  is given) minus the best true accuracy found in the first ``q`` queries, in
  accuracy points (the benchmark's own metric, e.g. ``mean_acc`` in %).
  Always >= 0 and non-increasing. A run that stopped before ``Q`` queries
  (space exhausted, or NSGA-II/EA converged on already-queried
  architectures) is padded with its last value.
* **queries to the top p %** (p = 1, 0.1): the 1-based index of the first
  query whose architecture has rank <= ``ceil(p/100 * N)``, rank = 1 + the
  number of architectures with a strictly better accuracy (ties share the best
  rank, as :meth:`TabularBenchmark.rank`); ``N`` and the ranking are over the
  whole benchmark, or over the architectures within the FLOPs budget when one
  is given. A seed that never gets there counts as ``Q``.

Searcher settings derived from the budget ``Q`` (each searcher's ``budget_settings``, in its
config-key names; :func:`searcher_config`):

* ``random``: ``num_queries=Q``, batches of ``min(100, Q)``.
* ``rea``: ``num_queries=Q``, population ``P = min(50, max(5, Q // 20))``,
  sample size ``S = max(2, P // 5)`` (Q=1000: P=50, S=10), mutation prob
  ``1/num_genes`` (at least one gene changes).
* ``local``: ``num_queries=Q``, best-improvement hill climbing with random
  restarts.
* ``nsga2``: population ``min(40, max(4, Q // 10))`` (40 is BCNet's pymoo
  setting; Q=1000: 40), generations ``max(2, 4 * ceil(Q / pop))``.
* ``evolution`` (BCNet/SPOS EA): population ``p = min(50, max(4, Q // 10))``,
  top-k ``max(2, p // 5)``, ``p // 2`` mutants (prob 0.1) + ``p - p // 2``
  crossover children per epoch, epochs ``max(2, 4 * ceil(Q / p))``.

Generation-based searchers rarely use their nominal ``pop * generations``
budget exactly (offspring that were already queried cost nothing), so every
run is given the generous nominal budget above and **cut at exactly Q
queries**: it runs through :meth:`~nasbench.searchers.base.Searcher.run` with
``max_queries=Q``, which stops the search as soon as ``Q`` distinct
architectures have been queried (the batch crossing ``Q`` is cut, so the
history has ``Q`` records; the first ``Q`` queries of a longer run are exactly
the queries of a run stopped at ``Q``). Any other registered searcher gets
``num_queries=Q``.

Benchmarks whose records have no FLOPs (``flops`` is None) and whose space
has no FLOPs model are searched with every architecture's FLOPs set to 0
(NSGA-II then optimises accuracy alone and no Pareto plot is drawn); a
``flops_budget`` is rejected for them. Otherwise the FLOPs of an
architecture are the benchmark's own (record) FLOPs, falling back to
``space.flops`` (``nats_sss``: its records have none, its space computes
them); the searchers' FLOPs window and the budgeted optimum use the same
numbers, so the regret is never negative.

Output layout of ``bench_search(..., out=BDIR)``:

* ``BDIR/<slug>/results.json`` per benchmark (``slug`` = the benchmark name with
  ``/`` replaced by ``-``): ``{searcher: stats}``;
* ``BDIR/results.json``: the same mapping for the *first* benchmark given (the
  only one in the usual single-benchmark call), so its top level maps each
  searcher name to its stats;
* ``BDIR/summary.json``: ``{benchmark: {searcher: {queries_to_top_1pct,
  "queries_to_top_0.1pct", final_mean_regret, ...}}}`` for all benchmarks,
  and ``BDIR/summary.md``, the same as a Markdown table;
* ``BDIR/regret.png`` (one panel per benchmark), ``BDIR/regret_<slug>.png``:
  mean +/- std (over seeds) of the regret against queries (log x);
  ``BDIR/pareto_nsga2_<slug>.png``: NSGA-II fronts (accuracy vs FLOPs) over all
  benchmark architectures and the true front, for benchmarks with FLOPs.

``stats`` (one searcher on one benchmark) holds ``mean_regret`` / ``std_regret``
(``Q`` floats; std over seeds, ddof 0), ``queries_to_top_1pct`` /
``queries_to_top_0.1pct`` (mean over seeds) with their std and the fraction of
seeds that got there, ``final_mean_regret``, the searcher ``config``, the
benchmark facts ``truth`` (best accuracy, N, rank cut-offs), ``per_seed`` raw
numbers (regret curve, queries to the top, best architecture and accuracy,
number of queries, run time) and, for NSGA-II, ``pareto``: each seed's front
(of its first ``Q`` queries).
"""
from __future__ import annotations

import math
import os
import time
from typing import Sequence

import numpy as np

from ..errors import ConfigError, NasbenchError
from ..registry import SEARCHERS
from ..utils import atomic_write_json, check_out_path, make_out_dir
from .base import SearchContext, build_searcher

__all__ = ["bench_search", "searcher_config", "BenchmarkTruth", "regret_curve", "queries_to_top",
           "run_searcher", "slug", "plot_regret", "plot_pareto"]

TOP_FRACTIONS = {"1pct": 0.01, "0.1pct": 0.001}


def slug(name: str) -> str:
    """File-name form of a benchmark name (``/`` -> ``-``)."""
    return str(name).strip("/").replace("/", "-")


def _canonical(name: str) -> str:
    return SEARCHERS.canonical(name)


def searcher_config(name: str, budget: int) -> dict:
    """Settings (config keys) of searcher ``name`` for a budget of ``budget`` queries
    (the searcher's ``budget_settings``; module docstring)."""
    return SEARCHERS.get(name).budget_settings(int(budget))


class _BenchSpace:
    """The benchmark's space with ``flops`` answered from the benchmark records.

    Everything else is delegated to the wrapped space. ``flops(arch)`` is the
    record's FLOPs, else ``space.flops(arch)``, else 0 (no FLOPs model).
    """

    def __init__(self, space, flops: dict):
        self._space = space
        self._flops = flops
        self.name = getattr(space, "name", "space")

    def __getattr__(self, item):
        return getattr(self._space, item)

    def __len__(self):
        return len(self._space)

    def __iter__(self):
        return iter(self._space)

    def flops(self, arch) -> int:
        arch = self._space.validate(arch)
        f = self._flops.get(arch)
        return 0 if f is None else f


class BenchmarkTruth:
    """Ground truth of a benchmark for regret and top-p % checks.

    Args:
        bench: a :class:`~nasbench.benchmarks.base.TabularBenchmark`.
        flops_budget: optional max FLOPs (MACs); the optimum and the ranking
            are then taken over the architectures within the budget.

    Attributes: ``acc`` (arch -> true accuracy), ``flops`` (arch -> MACs or
    None), ``has_flops``, ``best_acc``, ``best_key``, ``num_archs`` (N of the
    ranking), ``cutoff_rank`` / ``cutoff_acc`` (``{"1pct": ..., "0.1pct": ...}``:
    an arch is in the top p % iff its rank <= cutoff_rank iff its accuracy >=
    cutoff_acc), ``space`` (the search space with record FLOPs).

    Raises:
        NasbenchError: a FLOPs budget on a benchmark without FLOPs, or a budget
            no architecture satisfies.
    """

    def __init__(self, bench, flops_budget: float | None = None):
        space = bench.space
        self.name, self.metric, self.flops_budget = bench.name, bench.metric, flops_budget
        self.acc, self.flops = {}, {}
        no_model = False
        for key in bench:
            rec = bench.query(key)
            arch = space.decode(key)
            self.acc[arch] = float(rec[bench.metric])
            f = rec.get("flops")
            if f is None and not no_model:
                try:
                    f = int(space.flops(arch))
                except NotImplementedError:
                    no_model = True
            self.flops[arch] = None if f is None else int(f)
        self.has_flops = all(f is not None for f in self.flops.values())
        if flops_budget is not None and not self.has_flops:
            raise NasbenchError(f"{bench.name}: the benchmark has no FLOPs for (some) architectures, "
                                "so --flops-budget cannot be applied; drop it for this benchmark")
        legal = [a for a in self.acc if flops_budget is None or self.flops[a] <= flops_budget]
        if not legal:
            raise NasbenchError(f"{bench.name}: no architecture has FLOPs <= {flops_budget:g} MACs")
        accs = np.array([self.acc[a] for a in legal])
        self.num_archs = len(legal)
        # Not bench.best(max_flops=...): that one reads only the records' FLOPs (it raises when a
        # record has none, where self.flops falls back to space.flops) and compares them unrounded,
        # while the searchers' window uses self.flops; the optimum must use the same numbers.
        # Ties: the first in benchmark order, as bench.best.
        i = int(np.argmax(accs))
        self.best_acc, self.best_key = float(accs[i]), space.encode(legal[i])
        desc = np.sort(accs)[::-1]
        self.cutoff_rank = {k: int(math.ceil(p * self.num_archs)) for k, p in TOP_FRACTIONS.items()}
        self.cutoff_acc = {k: float(desc[r - 1]) for k, r in self.cutoff_rank.items()}
        self.space = _BenchSpace(space, self.flops)
        self._encode = space.encode

    @property
    def flops_range(self):
        return None if self.flops_budget is None else (None, float(self.flops_budget))

    def rank(self, arch) -> int:
        """1 + number of architectures (within the budget) with strictly better accuracy."""
        v = self.acc[tuple(arch)]
        return 1 + sum(1 for a, x in self.acc.items() if x > v and
                       (self.flops_budget is None or self.flops[a] <= self.flops_budget))

    def to_dict(self) -> dict:
        return {"benchmark": self.name, "metric": self.metric, "best_acc": self.best_acc,
                "best_arch": self.best_key, "num_archs": self.num_archs,
                "flops_budget": self.flops_budget, "has_flops": self.has_flops,
                **{f"top_{k}_rank": v for k, v in self.cutoff_rank.items()},
                **{f"top_{k}_acc": v for k, v in self.cutoff_acc.items()}}


def regret_curve(history: Sequence[dict], truth: BenchmarkTruth, budget: int) -> np.ndarray:
    """Regret after each of ``budget`` queries (padded with the last value; truncated at ``budget``)."""
    accs = np.array([truth.acc[tuple(h["arch"])] for h in history[:budget]], dtype=float)
    if accs.size == 0:
        raise ValueError("empty history")
    reg = truth.best_acc - np.maximum.accumulate(accs)
    if reg.size < budget:
        reg = np.concatenate([reg, np.full(budget - reg.size, reg[-1])])
    return reg


def queries_to_top(history: Sequence[dict], truth: BenchmarkTruth, which: str, budget: int) -> tuple[int, bool]:
    """``(q, reached)``: 1-based query index of the first top-``which`` architecture
    (``which`` in ``"1pct"``, ``"0.1pct"``) within ``budget`` queries, else ``(budget, False)``."""
    cut = truth.cutoff_acc[which]
    for i, h in enumerate(history[:budget]):
        if truth.acc[tuple(h["arch"])] >= cut:
            return i + 1, True
    return int(budget), False


def run_searcher(name: str, bench, truth: BenchmarkTruth, budget: int, seed: int,
                 config: dict | None = None):
    """Run searcher ``name`` once on ``bench``; returns ``(history, config)``.

    The history holds at most ``budget`` records: the searcher runs through
    :meth:`~nasbench.searchers.base.Searcher.run` with ``max_queries=budget``,
    so it stops as soon as ``budget`` distinct architectures were queried.
    ``config`` (default :func:`searcher_config`) is returned without the budget.
    """
    cfg = dict(searcher_config(name, budget) if config is None else config)
    ctx = SearchContext(flops_range=truth.flops_range, seed=int(seed), max_queries=int(budget))
    searcher = build_searcher({**cfg, "type": name}, ctx)
    return list(searcher.run(truth.space, bench).history), cfg


def _summary_stats(runs: list, truth: BenchmarkTruth, budget: int, name: str, cfg: dict,
                   seeds: list, want_pareto: bool) -> dict:
    from .nsga2 import pareto_front

    curves = np.stack([r["regret"] for r in runs])
    out = {"benchmark": truth.name, "searcher": name, "budget": int(budget), "seeds": list(seeds),
           "flops_budget": truth.flops_budget, "config": cfg,
           "mean_regret": curves.mean(0).tolist(), "std_regret": curves.std(0).tolist(),
           "final_mean_regret": float(curves[:, -1].mean()), "final_std_regret": float(curves[:, -1].std())}
    for k in TOP_FRACTIONS:
        q = np.array([r[f"queries_to_top_{k}"] for r in runs], dtype=float)
        out[f"queries_to_top_{k}"] = float(q.mean())
        out[f"std_queries_to_top_{k}"] = float(q.std())
        out[f"frac_seeds_top_{k}"] = float(np.mean([r[f"reached_top_{k}"] for r in runs]))
    out["truth"] = truth.to_dict()
    per_seed = {"seed": list(seeds)}
    for field in ("queries_to_top_1pct", "queries_to_top_0.1pct", "reached_top_1pct", "reached_top_0.1pct",
                  "final_regret", "best_arch", "best_acc", "num_queries", "time_s"):
        per_seed[field] = [r[field] for r in runs]
    per_seed["regret"] = [[round(float(x), 6) for x in r["regret"]] for r in runs]
    out["per_seed"] = per_seed
    if want_pareto:
        out["pareto"] = [[{"arch": truth._encode(p["arch"]), "acc": truth.acc[p["arch"]], "flops": p["flops"]}
                          for p in pareto_front([{"arch": h["arch"], "score": truth.acc[h["arch"]],
                                                  "flops": truth.flops[h["arch"]]} for h in r["history"]])]
                         for r in runs]
    return out


def _one_seed(name, bench, truth, budget, seed, cfg):
    t0 = time.perf_counter()
    history, cfg = run_searcher(name, bench, truth, budget, seed, cfg)
    dt = time.perf_counter() - t0
    archs = [tuple(h["arch"]) for h in history]
    if len(set(archs)) != len(archs):  # QueryCache guarantees this; a cheap sanity check
        raise RuntimeError(f"{name} seed {seed}: an architecture was queried twice")
    reg = regret_curve(history, truth, budget)
    best = max(archs, key=lambda a: truth.acc[a])
    r = {"regret": reg, "final_regret": float(reg[-1]), "best_arch": truth._encode(best),
         "best_acc": truth.acc[best], "num_queries": len(history), "time_s": round(dt, 3),
         "history": [{"arch": a} for a in archs]}
    for k in TOP_FRACTIONS:
        q, ok = queries_to_top(history, truth, k, budget)
        r[f"queries_to_top_{k}"], r[f"reached_top_{k}"] = q, ok
    return r


def bench_search(benchmarks: Sequence[str] | str, searchers: Sequence[str] | str, budget: int, seeds: int,
                 root="data/benchmarks", out=None, flops_budget: float | None = None,
                 progress: bool = True, plots: bool = True) -> dict:
    """Run every searcher on every benchmark for seeds ``0..seeds-1``; write ``out`` (see module doc).

    Args:
        benchmarks: benchmark names (list or comma-separated string) for
            :func:`~nasbench.benchmarks.load_benchmark`.
        searchers: searcher registry names (list or comma-separated string).
        budget: queries ``Q`` per run.
        seeds: number of seeds ``S`` (seeds ``0..S-1``).
        root: benchmark root folder.
        out: output folder, or ``None`` to write nothing.
        flops_budget: optional max FLOPs (MACs) for the searchers and the optimum.
        progress: tqdm bar over the seeds of each (benchmark, searcher).
        plots: write the PNG figures.

    Returns:
        ``{benchmark: {searcher: stats}}``.

    Raises:
        ConfigError: bad budget/seeds, unknown searcher, empty lists.
        NasbenchError: unknown benchmark, missing file, infeasible FLOPs budget.
    """
    from ..benchmarks import load_benchmark

    def split(x):
        items = x.split(",") if isinstance(x, str) else list(x)
        return list(dict.fromkeys(s.strip() for s in items if s and s.strip()))

    bnames, snames = split(benchmarks), [s.lower() for s in split(searchers)]
    if not bnames:
        raise ConfigError("no benchmark given")
    if not snames:
        raise ConfigError("no searcher given")
    for s in snames:
        _canonical(s)  # ConfigError naming the known searchers
    if int(budget) < 1:
        raise ConfigError(f"budget must be >= 1 query, got {budget}")
    if int(seeds) < 1:
        raise ConfigError(f"seeds must be >= 1, got {seeds}")
    if flops_budget is not None and not float(flops_budget) > 0:
        raise ConfigError(f"flops budget must be > 0 MACs, got {flops_budget}")
    budget, seed_list = int(budget), list(range(int(seeds)))
    if out is not None:
        check_out_path(out)
    # every benchmark is loaded (name, file, FLOPs budget checked) before anything runs or is written
    loaded = {bname: load_benchmark(bname, root) for bname in bnames}
    truths = {bname: BenchmarkTruth(bench, flops_budget) for bname, bench in loaded.items()}
    if out is not None:
        make_out_dir(out)

    results = {}
    for bname in bnames:
        bench, truth = loaded[bname], truths[bname]
        res_b = {}
        for sname in snames:
            cfg = searcher_config(sname, budget)
            it = seed_list
            if progress:
                from tqdm.auto import tqdm
                it = tqdm(seed_list, desc=f"{bname} {sname}", unit="seed", leave=True)
            runs = []
            for seed in it:
                try:
                    runs.append(_one_seed(sname, bench, truth, budget, seed, cfg))
                except RuntimeError as e:
                    if "infeasible" in str(e):
                        raise NasbenchError(f"{bname} {sname}: {e}") from None
                    raise
            res_b[sname] = _summary_stats(runs, truth, budget, sname, cfg, seed_list,
                                          want_pareto=SEARCHERS.get(sname).finds_pareto_front and truth.has_flops)
        results[bname] = res_b
        if out is not None:
            atomic_write_json(res_b, os.path.join(out, slug(bname), "results.json"))
            if plots:
                plot_regret({bname: res_b}, os.path.join(out, f"regret_{slug(bname)}.png"))
                for sname, st in res_b.items():
                    if "pareto" in st:
                        plot_pareto(st, truth, os.path.join(out, f"pareto_{_canonical(sname)}_{slug(bname)}.png"))
    if out is not None:
        atomic_write_json(results[bnames[0]], os.path.join(out, "results.json"))
        summary = {b: {s: {k: st[k] for k in ("queries_to_top_1pct", "queries_to_top_0.1pct",
                                               "std_queries_to_top_1pct", "std_queries_to_top_0.1pct",
                                               "frac_seeds_top_1pct", "frac_seeds_top_0.1pct",
                                               "final_mean_regret", "final_std_regret", "config")}
                           for s, st in r.items()} for b, r in results.items()}
        summary["_meta"] = {"budget": budget, "seeds": len(seed_list), "flops_budget": flops_budget,
                            "benchmarks": bnames, "searchers": snames, "root": os.fspath(root)}
        atomic_write_json(summary, os.path.join(out, "summary.json"))
        _write_md(results, os.path.join(out, "summary.md"), budget, len(seed_list), flops_budget)
        if plots:
            plot_regret(results, os.path.join(out, "regret.png"))
    return results


def _write_md(results: dict, path: str, budget: int, seeds: int, flops_budget) -> None:
    lines = [f"Budget {budget} queries, {seeds} seeds"
             + (f", FLOPs budget {flops_budget:g} MACs" if flops_budget is not None else "") + ".",
             "Queries to top 1 % / 0.1 %: mean (std) over seeds, a seed that never gets there counts as "
             f"{budget}; 'hit' = fraction of seeds that got there. Regret in accuracy points after {budget} "
             "queries.", "",
             "| benchmark | searcher | queries to top 1% | hit | queries to top 0.1% | hit | final regret |",
             "|---|---|---|---|---|---|---|"]
    for b, r in results.items():
        for s, st in r.items():
            lines.append(f"| {b} | {s} | {st['queries_to_top_1pct']:.1f} ({st['std_queries_to_top_1pct']:.1f}) "
                         f"| {st['frac_seeds_top_1pct']:.2f} "
                         f"| {st['queries_to_top_0.1pct']:.1f} ({st['std_queries_to_top_0.1pct']:.1f}) "
                         f"| {st['frac_seeds_top_0.1pct']:.2f} "
                         f"| {st['final_mean_regret']:.3f} ({st['final_std_regret']:.3f}) |")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


# -- figures ----------------------------------------------------------------------
def plot_regret(results: dict, path) -> None:
    """Mean +/- std regret against queries (log x), one panel per benchmark, one line per searcher."""
    from ..metrics.plots import plt_module, save_figure

    plt = plt_module()
    n = len(results)
    fig, axes = plt.subplots(1, n, figsize=(5.0 * n, 3.8), squeeze=False)
    for ax, (bname, res_b) in zip(axes[0], results.items()):
        for sname, st in res_b.items():
            m, s = np.asarray(st["mean_regret"]), np.asarray(st["std_regret"])
            x = np.arange(1, m.size + 1)
            ax.plot(x, m, lw=1.4, label=f"{sname} (top1%: {st['queries_to_top_1pct']:.0f} q)")
            ax.fill_between(x, np.maximum(m - s, 0), m + s, alpha=0.2)
        st0 = next(iter(res_b.values()))
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("queries")
        ax.set_ylabel(f"regret ({st0['truth']['metric']}, points)")
        fb = st0["flops_budget"]
        ax.set_title(f"{bname}: {len(st0['seeds'])} seeds" + (f", FLOPs <= {fb / 1e6:g}M" if fb else ""),
                     fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_pareto(stats: dict, truth: BenchmarkTruth, path) -> None:
    """Accuracy vs FLOPs: every benchmark architecture (grey), the true front (black) and the
    fronts found by the searcher (``stats["pareto"]``, one per seed; seed 0 drawn as a line)."""
    from ..metrics.plots import plt_module, save_figure
    from .nsga2 import pareto_front

    plt = plt_module()
    archs = list(truth.acc)
    f_all = np.array([truth.flops[a] for a in archs], dtype=float) / 1e6
    a_all = np.array([truth.acc[a] for a in archs])
    # (flops, acc) of the true front by increasing FLOPs; architectures sharing a point drawn once
    true_front = list(dict.fromkeys(
        (p["flops"], p["score"]) for p in pareto_front(
            [{"arch": a, "score": truth.acc[a], "flops": truth.flops[a]} for a in archs
             if truth.flops_budget is None or truth.flops[a] <= truth.flops_budget])))
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter(f_all, a_all, s=3, c="0.8", label=f"all {len(archs)} archs", rasterized=True)
    ax.step([f / 1e6 for f, _ in true_front], [a for _, a in true_front], where="post",
            c="k", lw=1.0, ls="--", zorder=4, label="true front")
    for i, front in enumerate(stats["pareto"]):
        f = [p["flops"] / 1e6 for p in front]
        a = [p["acc"] for p in front]
        if i == 0:
            ax.step(f, a, where="post", c="C3", lw=1.2, marker="o", ms=3, label=f"{stats['searcher']} seed 0")
        else:
            ax.scatter(f, a, s=6, c="C0", alpha=0.3, label=f"other seeds ({len(stats['pareto']) - 1})"
                       if i == 1 else None)
    if truth.flops_budget is not None:
        ax.axvline(truth.flops_budget / 1e6, c="C2", ls="--", lw=1, label="FLOPs budget")
    lo = np.percentile(a_all, 5)
    ax.set_ylim(lo, truth.best_acc + 0.05 * (truth.best_acc - lo))
    ax.set_xlabel("MFLOPs (MACs)")
    ax.set_ylabel(f"{truth.metric} (%)")
    ax.set_title(f"{stats['benchmark']}: {stats['searcher']} fronts after {stats['budget']} queries", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
