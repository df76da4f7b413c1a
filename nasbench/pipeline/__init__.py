"""The NAS workflow as importable functions, one module per stage; ``tools/*.py`` are thin wrappers.

    train_supernet(cfg, out)             (:mod:`.train`)    -> out/checkpoints/last.pth, logs, reports
    search(cfg, ckpt, out)               (:mod:`.search`)   -> out/result.json (arch, flops, params, score,
                                                               benchmark truth)
    retrain(cfg, arch, out)              (:mod:`.retrain`)  -> out/result.json (arch, top1 on the test set)
    rank_eval(cfg, ckpt, out, num_archs) (:mod:`.rank_eval`)-> out/rank.json + out/rank_scatter.png
    rank_eval_ratings(cfg, dir, out)     (:mod:`.rank_eval`)-> out/rank.json from the algorithm's rating files
    budget_curve(runs, epochs, out)      (:mod:`.budget_curve`) -> per (run, budget): the three above;
                                                               out/curve.{json,png}

What the stages share (data, loaders, output folders, benchmarks, checkpoints)
is in :mod:`.common`. The stages ask the configured space, algorithm,
evaluator and searcher (their registries and protocols); they never name a
method.
"""
from ..errors import ArchError
from .budget_curve import budget_curve
from .common import (benchmark_for, check_amp, flops_range, load_datasets, load_supernet, rank_archs, read_arch,
                     supernet_evaluator)
from .rank_eval import rank_eval, rank_eval_ratings
from .retrain import retrain
from .search import search
from .train import TauTracker, train_supernet

__all__ = ["check_amp", "load_datasets", "train_supernet", "search", "retrain", "rank_eval", "rank_eval_ratings", "budget_curve", "load_supernet",
           "supernet_evaluator", "benchmark_for", "flops_range", "read_arch", "rank_archs", "TauTracker",
           "ArchError"]
