"""Ranking quality of a trained supernet against a tabular benchmark (``tools/rank_eval.py``).

    rank_eval(cfg, ckpt, out, num_archs) -> out/rank.json + out/rank_scatter.png
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..config import Config
from ..engine import dist as D
from ..errors import ConfigError
from ..evaluators import DistributedEvaluator
from ..utils import atomic_write_json, make_out_dir
from ..algorithms import build_algorithm
from ..spaces import build_space
from .common import (benchmark_for, check_amp, check_out_path, evaluator_class, load_datasets, load_supernet, prepare_out, rank_archs,
                     supernet_evaluator)

__all__ = ["rank_eval", "rank_eval_ratings"]


def rank_eval(cfg: Config, ckpt, out, num_archs: int | None = None) -> dict:
    """Rank correlation of supernet scores with the benchmark on seeded random architectures.

    Scores ``num_archs`` (default ``rank_eval.num_archs``) benchmark architectures
    drawn with ``cfg.seed`` by the algorithm's evaluator and reports Kendall tau,
    Spearman and Pearson against the benchmark, the same inside equal-count
    FLOPs bands, and the FLOPs proxy beside them.

    Raises:
        ConfigError: no benchmark for the space, or ``num_archs`` outside ``[2, len(benchmark)]``.
    """
    from ..metrics.ranking import banded_correlations, rank_correlations
    check_out_path(out)
    dist = D.init_distributed(device=cfg.device)
    space, supernet, algorithm = load_supernet(cfg, ckpt, dist.device)
    bench = benchmark_for(cfg, space)
    if bench is None:
        raise ConfigError(f"rank_eval needs a tabular benchmark for {space.name} (set benchmark.name)")
    n = int(cfg.rank_eval.num_archs if num_archs is None else num_archs)
    if not 2 <= n <= len(bench):
        raise ConfigError(f"--num-archs must lie in [2, {len(bench)}], got {n}")
    kind = cfg.eval.type
    needs_data = evaluator_class(cfg, supernet).needs_data
    if needs_data:  # data-driven evaluators autocast to train.amp
        check_amp(cfg, dist.device, "train.amp")
    datasets = load_datasets(cfg) if needs_data else None
    out = prepare_out(cfg, out, dist)
    archs = rank_archs(bench, space, n, int(cfg.seed))
    evaluator = DistributedEvaluator(supernet_evaluator(cfg, supernet, algorithm, datasets, dist.device))
    t0 = time.time()
    scores = []
    iterator = range(0, n, 10)
    if dist.is_main:
        from tqdm import tqdm
        iterator = tqdm(iterator, desc="rank_eval", unit="x10 archs")
    for i in iterator:
        scores += evaluator.evaluate(archs[i:i + 10])
    seconds = (time.time() - t0) / n
    pred = np.array([s["score"] for s in scores])
    true = np.array([bench.query(a)[bench.metric] for a in archs])
    flops = np.array([space.flops(a) for a in archs], dtype=float)
    corr = rank_correlations(pred, true)
    proxy = rank_correlations(flops, true)
    banded = banded_correlations(pred, true, flops, num_bands=cfg.rank_eval.flops_bands)
    proxy_banded = banded_correlations(flops, true, flops, num_bands=cfg.rank_eval.flops_bands)
    res = {"benchmark": bench.name, "algorithm": cfg.algorithm.type, "evaluator": kind, "num_archs": n,
           "kendall_tau": corr["kendall_tau"], "spearman": corr["spearman"], "pearson": corr["pearson"],
           "flops_proxy_kendall_tau": proxy["kendall_tau"], "flops_proxy_spearman": proxy["spearman"],
           "flops_proxy_pearson": proxy["pearson"],
           "banded_kendall_tau": banded["kendall_tau"], "banded_spearman": banded["spearman"],
           "flops_proxy_banded_kendall_tau": proxy_banded["kendall_tau"],
           "bands": banded["bands"], "seconds_per_arch": seconds,
           "archs": [{"arch": space.encode(a), "score": float(p), "true": float(t), "flops": int(f)}
                     for a, p, t, f in zip(archs, pred, true, flops)]}
    if dist.is_main:
        from ..metrics.plots import plot_rank_scatter
        plot_rank_scatter(pred, true, flops, out / "rank_scatter.png",
                          title=f"{cfg.algorithm.type} ({kind}) on {bench.name}: Kendall tau {corr['kendall_tau']:.3f} "
                                f"(banded {banded['kendall_tau']:.3f}, FLOPs proxy {proxy['kendall_tau']:.3f})")
        atomic_write_json(res, out / "rank.json")
    return res


def rank_eval_ratings(cfg: Config, ratings_dir, out) -> dict:
    """Ranking quality of rating files alone (``tools/rank_eval.py --ratings DIR``, no checkpoint).

    The configured algorithm rates every benchmark architecture from the files in
    ``ratings_dir`` (:meth:`~nasbench.algorithms.base.Algorithm.rating_file_report`; nothing
    in them is executed). Writes ``out/rank.json`` = ``{"benchmark", "space", "algorithm",
    "source", "num_archs", "kendall_tau", "spearman", "pearson" (positive: a better rating goes
    with a higher accuracy), "size_proxies", "best", and "history" (the correlations after each
    rating epoch, plotted to ``out/rank_history.png``) where the algorithm reports one}`` and
    returns it.

    Raises:
        ConfigError: no benchmark for the space, or an algorithm without rating files;
            DataNotFoundError / NasbenchError: missing or malformed files (nothing written).
    """
    check_out_path(out)
    space = build_space(cfg.space, num_classes=cfg.data.num_classes)
    algorithm = build_algorithm(cfg.algorithm, space, seed=int(cfg.seed))
    bench = benchmark_for(cfg, space)
    if bench is None:
        raise ConfigError(f"--ratings needs a tabular benchmark for {space.name} (set benchmark.name)")
    rep = algorithm.rating_file_report(ratings_dir, bench)
    c = rep["correlations"]
    res = {"benchmark": bench.name, "space": space.name, "algorithm": cfg.algorithm.type, "source": str(ratings_dir),
           "num_archs": rep["num_archs"], "kendall_tau": c["kendall_tau"], "spearman": c["spearman"],
           "pearson": c["pearson"], "size_proxies": rep.get("size_proxies", {}), "best": rep.get("best")}
    if rep.get("history"):
        res["history"] = rep["history"]
    out = Path(out)
    make_out_dir(out)
    atomic_write_json(res, out / "rank.json")
    if rep.get("history"):
        _plot_rating_history(res, out / "rank_history.png")
    print(f"{space.name} on {bench.name}: {res['num_archs']} architectures rated from {ratings_dir}, Kendall tau "
          f"{res['kendall_tau']:.4f}, Spearman {res['spearman']:.4f}, Pearson {res['pearson']:.4f}")
    return res


def _plot_rating_history(res: dict, path) -> None:
    """Kendall tau of the rating known after each rating epoch (``res["history"]``), with the
    final rating's and the size proxies' tau as reference lines."""
    from ..metrics.plots import plot_curves
    hist = res["history"]
    ref = {"final rating": res["kendall_tau"]}
    ref.update({f"{name} proxy": c["kendall_tau"] for name, c in res.get("size_proxies", {}).items()})
    plot_curves({"rating after this epoch": ([h["epoch"] for h in hist], [h["kendall_tau"] for h in hist])}, path,
                title=f"{res['space']} on {res['benchmark']}: {res['num_archs']} architectures",
                ylabel="Kendall tau vs benchmark", reference=ref)
