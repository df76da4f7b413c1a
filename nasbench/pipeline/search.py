"""Stage 2: search with a trained supernet (``tools/search.py``).

    search(cfg, ckpt, out) -> out/result.json (arch, flops, params, score, benchmark truth)
"""
from __future__ import annotations

import time
from pathlib import Path

from ..config import Config
from ..engine import dist as D
from ..engine.logger import RunLogger
from ..errors import ConfigError, NasbenchError
from ..evaluators import DistributedEvaluator
from ..evaluators.journal import JournalEvaluator
from ..searchers import SearchContext, build_searcher
from ..utils import atomic_write_json
from .common import (benchmark_for, check_amp, check_out_path, evaluator_class, flops_range, load_datasets, load_supernet, prepare_out,
                     seed_all, supernet_evaluator)

__all__ = ["search"]


def search(cfg: Config, ckpt, out, resume: bool = False) -> dict:
    """Search the space with the trained supernet as evaluator; writes ``out/result.json``.

    Every evaluated batch is journalled in ``out/queries.jsonl``
    (:class:`~nasbench.evaluators.journal.JournalEvaluator`); with ``resume`` a killed
    search replays it and ends with the result of an uninterrupted run
    (``search_seconds`` aside; ``search.max_seconds`` counts this process's time only).

    The evaluator is the algorithm's (``eval.type``). When it knows its best
    architecture without a search (a DARTS supernet's argmax) that is the
    result; otherwise the searcher of ``cfg.search`` asks it, under
    ``search.flops_budget``. Where the space has a tabular benchmark the
    result holds the found architecture's true accuracy, rank and regret.

    Raises:
        ConfigError, CheckpointError, NasbenchError: bad input (before anything is written);
            CheckpointError also for a journal of other settings on ``resume``.
    """
    check_out_path(out)
    dist = D.init_distributed(device=cfg.device)
    seed_all(int(cfg.seed))
    space, supernet, algorithm = load_supernet(cfg, ckpt, dist.device)
    ev_cls = evaluator_class(cfg, supernet)
    if ev_cls.needs_data:  # data-driven evaluators autocast to train.amp
        check_amp(cfg, dist.device, "train.amp")
    if cfg.search.max_seconds is not None and dist.distributed:  # ranks would stop at different batches
        raise ConfigError("search.max_seconds works with one process only; use a query budget with several")
    bench = benchmark_for(cfg, space)
    datasets = load_datasets(cfg) if ev_cls.needs_data else None
    frange = flops_range(cfg)
    if resume and not (Path(out) / "queries.jsonl").is_file():
        raise NasbenchError(f"--resume: no search journal at {Path(out) / 'queries.jsonl'}")
    journal = JournalEvaluator(None, space, Path(out) / "queries.jsonl", _journal_settings(cfg, ckpt),
                               resume=resume, write=dist.is_main)  # checks a journal before anything is written
    out = prepare_out(cfg, out, dist)
    logger = RunLogger(out, rank=dist.rank, use_tensorboard=False)
    evaluator = supernet_evaluator(cfg, supernet, algorithm, datasets, dist.device)
    res = {"algorithm": cfg.algorithm.type, "evaluator": cfg.eval.type}
    t0 = time.time()
    direct = evaluator.best_architecture()
    if direct is not None:
        best, extras = direct
    else:
        ctx = SearchContext(flops_range=frange, seed=int(cfg.seed), progress=dist.is_main,
                            max_seconds=cfg.search.max_seconds, space=space,
                            loss_history=algorithm.loss_history(), log=logger.info)
        journal.evaluator = DistributedEvaluator(evaluator)
        if journal.replay_batches:
            logger.info("resuming the search: %d evaluated batches in %s", journal.replay_batches, journal.path)
        result = build_searcher(cfg.search, ctx).run(space, journal)
        best = result.best_arch
        extras = _search_record(cfg, space, result, frange, t0)
    flops, params = space.cost(best)
    res = {"arch": space.encode(best), "flops": int(flops), "params": int(params), **res, **extras}
    if bench is not None:
        res["benchmark"] = bench.summary(best, frange[1] if frange else None)
        res["baselines"] = bench.baselines(*(frange or (None, None)), space=space)  # same window, same MACs
    if dist.is_main:
        atomic_write_json(_ordered(res), out / "result.json")
        logger.info("found %s: %s%.2fM params, %.1fM MACs%s", res["arch"],
                    f"score {res['score']:.2f}, " if "score" in res else "", params / 1e6, flops / 1e6,
                    f", benchmark {bench.metric} {res['benchmark'][bench.metric]:.2f} rank "
                    f"{res['benchmark']['rank']} regret {res['benchmark']['regret']:.2f}" if bench else "")
    logger.close()
    return res


def _search_record(cfg, space, result, frange, t0) -> dict:
    """The searcher's part of ``result.json``: score, budget, queries, history, Pareto front."""
    rec = {"score": float(result.best_metrics["score"]), "searcher": cfg.search.type,
           "flops_budget": frange[1] if frange else None, "num_queries": len(result.history),
           "search_seconds": round(time.time() - t0, 1), "stopped": result.stopped,
           "history": [{"arch": space.encode(h["arch"]), "score": float(h["score"]), "flops": int(h["flops"])}
                       for h in result.history]}
    if result.pareto:
        rec["pareto"] = [{"arch": space.encode(p["arch"]), "score": float(p["score"]), "flops": int(p["flops"])}
                         for p in result.pareto]
    return rec


def _journal_settings(cfg, ckpt) -> dict:
    """What a resumed search must share with the journalled one: seed, search, eval, the checkpoint's bytes."""
    import hashlib
    h = hashlib.sha256()
    with open(ckpt, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"seed": cfg.seed, "search": cfg.search.to_dict(), "eval": cfg.eval.to_dict(), "ckpt_sha256": h.hexdigest()}


def _ordered(res: dict) -> dict:
    """``res`` with the per-query lists (``history``, ``pareto``) last, for readers of the file."""
    tail = ("history", "pareto")
    return {**{k: v for k, v in res.items() if k not in tail}, **{k: res[k] for k in tail if k in res}}
