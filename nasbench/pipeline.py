"""The NAS workflow as importable functions; ``tools/*.py`` are thin wrappers.

    train_supernet(cfg, out)            -> out/{config.yaml, log.jsonl, checkpoints/last.pth,
                                                fairness.json (width), indicator_tau.{json,png} (if tracked)}
    search(cfg, ckpt, out)              -> out/result.json (arch, flops, params, score, benchmark truth)
    retrain(cfg, arch, out)             -> out/result.json (arch, top1 on the test set, params, flops)
    rank_eval(cfg, ckpt, num_archs, out)-> out/rank.json + out/rank_scatter.png

Every stage validates its inputs (config, architecture, checkpoint, data)
before it creates or writes anything in ``out``; result files are written
atomically.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .algorithms import build_algorithm
from .algorithms.evaluator import SupernetEvaluator, make_batches
from .config import Config, dump_config
from .data import BatchLoader, load_cifar10, load_imagefolder, split_train_val
from .engine import dist as D
from .engine.checkpoint import load_checkpoint
from .engine.logger import RunLogger
from .engine.trainer import HookBase, StandardAlgorithm, Trainer, evaluate_accuracy, resolve_amp
from .errors import ArchError, ConfigError, NasbenchError
from .searchers import build_searcher
from .searchers.distributed import DistributedEvaluator
from .searchers.prior import PriorSampler, fit_prior
from .spaces import build_space
from .utils import atomic_write_json


# ----------------------------------------------------------------------------- data
def load_datasets(cfg):
    """``{"train", "val", "test"}`` in-memory datasets of ``cfg.data``.

    ``train``/``val`` are the seeded supernet-training and search-validation
    parts of the training set; ``test`` is used only for final numbers.
    """
    d = cfg.data
    root = Path(d.root)
    if d.name == "cifar10":
        full, test = load_cifar10(root, "train"), load_cifar10(root, "test")
    elif d.name == "imagefolder":
        if not (root / "train").is_dir():
            raise NasbenchError(f"data.root {root} has no train/ folder (ImageFolder layout "
                                "train/<class>/*, val/<class>/* or test/<class>/*)")
        full = load_imagefolder(root / "train")
        test_dir = root / "val" if (root / "val").is_dir() else root / "test"
        test = load_imagefolder(test_dir, classes=full.classes)
    else:
        raise ConfigError(f"data.name must be 'cifar10' or 'imagefolder', got {d.name!r}")
    train, val = split_train_val(full, d.val_size, d.split_seed, train_size=d.train_size)
    if d.test_size is not None and int(d.test_size) < len(test):
        _, test = split_train_val(test, int(d.test_size), d.split_seed)  # seeded, class-balanced subset
    return {"train": train, "val": val, "test": test, "num_classes": full.num_classes}


def _loader(cfg, data, train, dist, batch_size=None, seed_offset=0):
    bs = int(batch_size or (cfg.data.batch_size if train else cfg.data.eval_batch_size))
    return BatchLoader(data, bs, shuffle=train, augment=train and cfg.data.augment,
                       seed=int(cfg.seed) + seed_offset, drop_last=train,
                       rank=dist.rank if train else 0, world_size=dist.world_size if train else 1)


# ----------------------------------------------------------------------------- helpers
def _prepare_out(cfg, out, dist) -> Path:
    out = Path(out)
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, out / "config.yaml")
    D.barrier()
    return out


def _seed_all(seed):
    import random
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


_AMP_VALUES = ("none", "fp32", "no", "bf16", "fp16")


def check_amp(cfg, device, *keys) -> None:
    """Refuse a mixed-precision setting this run cannot honour, before anything is written.

    ``keys`` are the config keys the stage uses (``"train.amp"``, ``"retrain.amp"``).
    ``fp16`` is float16 autocast with a GradScaler, which needs CUDA: on a run whose
    ``device`` is not CUDA it is an error (the trainer alone would fall back to bf16).

    Raises:
        ConfigError: an unknown value, or ``fp16`` on a CPU device.
    """
    for key in keys:
        section, name = key.split(".")
        value = cfg[section][name]
        amp = "none" if value in (None, False) else str(value).lower()
        if amp not in _AMP_VALUES:
            raise ConfigError(f"{key}: unknown value {value!r}; expected none, bf16 or fp16")
        if amp == "fp16" and torch.device(device).type != "cuda":
            why = ("CUDA is not available on this machine" if not torch.cuda.is_available()
                   else f"this run's device is {torch.device(device).type} (device: {cfg.device})")
            raise ConfigError(f"{key}=fp16 (float16 autocast with a GradScaler) needs a CUDA device, but {why}; "
                              f"use {key}=bf16 or {key}=none")


def benchmark_for(cfg, space):
    """The tabular benchmark with ground truth for ``space``, or ``None``."""
    from .benchmarks import load_benchmark
    name = cfg.benchmark.name
    if name is None:
        name = space.benchmark
    if name is None:
        return None
    root = cfg.benchmark.root or Path(cfg.data.root) / "benchmarks"
    return load_benchmark(name, root)


def _flops_range(cfg):
    budget = cfg.search.flops_budget
    if budget is None:
        return None
    try:
        budget = float(budget)
    except (TypeError, ValueError):
        raise ConfigError(f"search.flops_budget must be a number of MACs, got {budget!r}") from None
    return (float(cfg.search.flops_min_ratio) * budget, budget)


def load_supernet(cfg, ckpt, device):
    """``(space, supernet, algorithm)`` restored from a supernet checkpoint.

    Raises:
        CheckpointError: unreadable file or weights that do not fit the config's space.
    """
    from .errors import CheckpointError
    state = load_checkpoint(ckpt)
    space = build_space(cfg.space, num_classes=cfg.data.num_classes)
    supernet = space.build_supernet()
    try:
        supernet.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as e:
        raise CheckpointError(f"{ckpt} does not hold a supernet of {space.name} with this config "
                              f"({type(e).__name__}: {str(e).splitlines()[0]})") from None
    algorithm = build_algorithm(cfg.algorithm, space, seed=cfg.seed)
    algorithm.load_state_dict(state["algorithm"])
    return space, supernet.to(device).eval(), algorithm


def evaluator_type(cfg, algorithm) -> str:
    """``cfg.eval.type`` resolved (``auto`` = the algorithm's own).

    ``"accuracy"`` (BN recalibration + validation), ``"bn_indicator"`` (BN-NAS)
    or ``"genotype"`` (a DARTS supernet: the architecture its parameters select).

    Raises:
        ConfigError: unknown type, the BN indicator on a supernet without operator
            choices, or a per-architecture evaluator on a DARTS supernet.
    """
    kind = cfg.eval.type
    if kind in (None, "auto"):
        kind = getattr(algorithm, "default_evaluator", "accuracy")
    if kind not in ("accuracy", "bn_indicator", "genotype"):
        raise ConfigError(f"eval.type must be auto, accuracy, bn_indicator or genotype, got {kind!r}")
    if kind == "bn_indicator" and algorithm.space.family != "op_choice":
        raise ConfigError(f"eval.type bn_indicator needs an operator-choice space, not {algorithm.space.name}")
    if (kind == "genotype") != (algorithm.space.family == "darts"):
        raise ConfigError(f"eval.type {kind} does not fit the {algorithm.space.name} space: a DARTS supernet "
                          "is searched by its architecture parameters (eval.type auto or genotype), "
                          "other supernets by an evaluator")
    return kind


def make_evaluator(cfg, supernet, algorithm, datasets, device):
    """The supernet evaluator of ``cfg.eval.type`` (see :func:`evaluator_type`).

    ``accuracy``: BN recalibration + validation accuracy on fixed batches of
    ``datasets`` (:class:`SupernetEvaluator`); ``bn_indicator``: BN-NAS's
    data-free score (``datasets`` unused, may be None).
    """
    kind = evaluator_type(cfg, algorithm)
    if kind == "genotype":
        raise ConfigError("a DARTS supernet has no per-architecture evaluator; tools/search.py reads "
                          "the architecture from its parameters")
    if kind == "bn_indicator":
        from .algorithms.indicator import BNIndicatorEvaluator
        return BNIndicatorEvaluator(supernet)
    recal = make_batches(_loader(cfg, datasets["train"], True, D.DistInfo(0, 1, 0, device),
                                 batch_size=cfg.eval.recal_batch_size, seed_offset=7919),
                         cfg.eval.recal_batches, device, with_targets=False)
    val = make_batches(_loader(cfg, datasets["val"], False, D.DistInfo(0, 1, 0, device)),
                       cfg.eval.val_batches, device)
    dtype = resolve_amp(cfg.train.amp, device)
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else None
    return SupernetEvaluator(supernet, recal, val, sides=algorithm.eval_sides, autocast=autocast)


# ----------------------------------------------------------------------------- stages
def train_supernet(cfg: Config, out, resume: bool = False, stop_after: int | None = None) -> Path:
    """Train the supernet of ``cfg.space`` with ``cfg.algorithm`` (see module doc).

    ``stop_after`` stops with a checkpoint after that many steps, as a preempted
    job would; ``resume=True`` continues from ``out/checkpoints/last.pth``.
    """
    dist = D.init_distributed(device=cfg.device)
    check_amp(cfg, dist.device, "train.amp")
    _seed_all(int(cfg.seed))
    space = build_space(cfg.space, num_classes=cfg.data.num_classes)
    if resume and not (Path(out) / "checkpoints" / "last.pth").is_file():
        raise NasbenchError(f"--resume: no checkpoint at {Path(out) / 'checkpoints' / 'last.pth'}")
    datasets = load_datasets(cfg)
    out = _prepare_out(cfg, out, dist)
    supernet = space.build_supernet()
    supernet.set_sync_bn(bool(cfg.train.sync_bn) and dist.distributed)
    algorithm = build_algorithm(cfg.algorithm, space, seed=cfg.seed)
    loader = _loader(cfg, datasets["train"], True, dist)
    if getattr(algorithm, "needs_arch_data", False):  # DARTS: architecture steps on the val split
        algorithm.arch_loader = _loader(cfg, datasets["val"], True, dist, seed_offset=104729)
    logger = RunLogger(out, rank=dist.rank)
    logger.info("supernet %s (%s): %.2fM params, %d train / %d val images, %d steps/epoch",
                space.name, cfg.algorithm.type, sum(p.numel() for p in supernet.parameters()) / 1e6,
                len(datasets["train"]), len(datasets["val"]), len(loader))
    train_cfg = Config({**cfg.train, "sync_bn": False})  # the supernet syncs its own dynamic BN
    hooks = []
    interval = cfg.rank_eval.track_interval
    if interval and space.family == "op_choice":
        # every rank loads the benchmark (only rank 0 measures): a missing file must stop
        # all ranks alike, not leave the others waiting in the first all-reduce
        bench = benchmark_for(cfg, space)
        if bench is None:
            raise ConfigError("rank_eval.track_interval needs a tabular benchmark for the space (benchmark.name)")
        archs = rank_archs(bench, space, int(cfg.rank_eval.num_archs), int(cfg.seed))
        hooks.append(IndicatorTracker(bench, space, archs, int(interval), out))
    trainer = Trainer(supernet, algorithm, loader, train_cfg, out, dist=dist, logger=logger, hooks=hooks,
                      extra_state={"config": cfg.to_dict(), "kind": "supernet"})
    trainer.fit(resume=resume, stop_after=stop_after)
    if dist.is_main and algorithm.counter is not None:
        write_fairness(algorithm.counter, out, label=cfg.algorithm.type)
    logger.close()
    return out / "checkpoints" / "last.pth"


def write_fairness(counter, out, label=""):
    """Write ``fairness.json`` (per-dimension max/min training count) and a bar plot."""
    ratios = counter.ratios()
    atomic_write_json({"algorithm": label, "max_min_ratio": ratios,
                       "counts": [c.tolist() for c in counter.counts]}, Path(out) / "fairness.json")
    from .metrics.plots import plot_channel_counts
    plot_channel_counts(counter.counts, Path(out) / "fairness.png", title=f"channel training counts ({label})")
    return ratios


def search(cfg: Config, ckpt, out) -> dict:
    """Search the space with the trained supernet as evaluator; writes ``out/result.json``."""
    dist = D.init_distributed(device=cfg.device)
    _seed_all(int(cfg.seed))
    space, supernet, algorithm = load_supernet(cfg, ckpt, dist.device)
    if evaluator_type(cfg, algorithm) == "genotype":
        return _genotype_search(cfg, space, supernet, out, dist)
    if evaluator_type(cfg, algorithm) == "accuracy":  # BN recalibration + validation autocast to train.amp
        check_amp(cfg, dist.device, "train.amp")
    bench = benchmark_for(cfg, space)
    datasets = load_datasets(cfg) if evaluator_type(cfg, algorithm) == "accuracy" else None
    flops_range = _flops_range(cfg)
    out = _prepare_out(cfg, out, dist)
    logger = RunLogger(out, rank=dist.rank, use_tensorboard=False)
    evaluator = DistributedEvaluator(make_evaluator(cfg, supernet, algorithm, datasets, dist.device))
    s = cfg.search
    sampler = None
    if s.prior and s.type == "evolution" and space.family != "width":
        logger.info("search.prior is BCNet's width prior; not used for the %s space", space.name)
    elif s.prior and s.type == "evolution" and algorithm.records:
        if flops_range is None:
            raise ConfigError("search.prior needs search.flops_budget (the prior targets a FLOPs budget)")
        choices = [list(space.choices(i)) for i in range(space.num_genes)]
        logits = fit_prior(algorithm.loss_history(), space.layer_flops(), flops_range[1], choices,
                           steps=s.prior_steps, lr=s.prior_lr, target_ratio=s.prior_target_ratio, seed=cfg.seed)
        sampler = PriorSampler(logits, choices)
        logger.info("prior initial population fitted from %d loss records", len(algorithm.records))
    if s.max_seconds is not None and dist.distributed:  # ranks would stop at different batches and hang
        raise ConfigError("search.max_seconds works with one process only; use a query budget with several")
    kwargs = dict(flops_range=flops_range, seed=int(cfg.seed), progress=dist.is_main, max_seconds=s.max_seconds)
    if s.type == "evolution":
        kwargs.update(population=s.population, topk=s.topk, mutation_num=s.mutation_num,
                      mutation_prob=s.mutation_prob, crossover_num=s.crossover_num, epochs=s.epochs,
                      sampler=sampler)
    elif s.type == "nsga2":
        kwargs.update(pop_size=s.population, generations=s.epochs)
    elif s.type in ("random", "rea", "local"):  # searchers with a query budget
        kwargs.update(num_queries=s.num_queries)
    t0 = time.time()
    result = build_searcher(s.type, **kwargs).run(space, evaluator)
    best = result.best_arch
    flops, params = space.cost(best)
    res = {"arch": space.encode(best), "flops": int(flops), "params": int(params),
           "score": float(result.best_metrics["score"]), "algorithm": cfg.algorithm.type,
           "evaluator": evaluator_type(cfg, algorithm),
           "searcher": s.type, "flops_budget": flops_range[1] if flops_range else None,
           "num_queries": len(result.history), "search_seconds": round(time.time() - t0, 1),
           "stopped": result.stopped}
    if bench is not None:
        res["benchmark"] = bench.summary(best, flops_range[1] if flops_range else None)
    res["history"] = [{"arch": space.encode(h["arch"]), "score": float(h["score"]), "flops": int(h["flops"])}
                      for h in result.history]
    if result.pareto:
        res["pareto"] = [{"arch": space.encode(p["arch"]), "score": float(p["score"]), "flops": int(p["flops"])}
                         for p in result.pareto]
    if dist.is_main:
        atomic_write_json(res, out / "result.json")
        logger.info("found %s: score %.2f, %.1fM MACs%s", res["arch"], res["score"], flops / 1e6,
                    f", benchmark {bench.metric} {res['benchmark'][bench.metric]:.2f} rank "
                    f"{res['benchmark']['rank']} regret {res['benchmark']['regret']:.2f}" if bench else "")
    logger.close()
    return res


def _genotype_search(cfg, space, supernet, out, dist) -> dict:
    """DARTS-style search: the architecture is the argmax of the trained architecture parameters.

    Writes ``out/result.json`` with the usual ``arch``/``flops``/``params`` plus the
    ``genotype`` (both cells as ``[op, input]`` pairs), the softmax operation
    weights ``[14][8]`` per cell and, with partial channels, the edge weights ``[14]``.
    """
    out = _prepare_out(cfg, out, dist)
    logger = RunLogger(out, rank=dist.rank, use_tensorboard=False)
    genotype = supernet.genotype()
    arch = space.from_genotype(genotype)
    flops, params = space.cost(arch)
    res = {"arch": space.encode(arch), "flops": int(flops), "params": int(params),
           "algorithm": cfg.algorithm.type, "evaluator": "genotype", "searcher": "argmax",
           "genotype": {"conv": [list(e) for e in genotype.normal], "enhance": [list(e) for e in genotype.reduce]},
           "weights": {}, "edge_weights": {}}
    with torch.no_grad():
        for cell in ("conv", "enhance"):
            w, e = supernet.cell_weights(cell)
            res["weights"][cell] = w.cpu().tolist()
            if e is not None:
                res["edge_weights"][cell] = e.cpu().tolist()
    if dist.is_main:
        atomic_write_json(res, out / "result.json")
        logger.info("genotype %s: %.2fM params, %.1fM MACs (retraining network)", res["arch"],
                    params / 1e6, flops / 1e6)
    logger.close()
    return res


def read_arch(space, arch) -> tuple:
    """Architecture from a key string, or from a JSON file holding ``{"arch": key}``."""
    import json
    p = Path(str(arch))
    if p.suffix == ".json" or p.is_file():
        try:
            arch = json.loads(p.read_text())["arch"]
        except FileNotFoundError:
            raise NasbenchError(f"architecture file {p} does not exist") from None
        except (ValueError, KeyError, TypeError):
            raise NasbenchError(f"{p}: not a JSON file with an 'arch' key") from None
    return space.validate(arch)


def retrain(cfg: Config, arch, out, resume: bool = False) -> dict:
    """Train the standalone network of ``arch`` from scratch; writes ``out/result.json``.

    Trains on the whole (possibly ``data.train_size``-subsampled) training set,
    i.e. the supernet-training part plus the search-validation part, and
    reports top-1 on the test set.
    """
    dist = D.init_distributed(device=cfg.device)
    check_amp(cfg, dist.device, "retrain.amp")
    _seed_all(int(cfg.seed))
    space = build_space(cfg.space, num_classes=cfg.data.num_classes)
    arch = read_arch(space, arch)
    datasets = load_datasets(cfg)
    out = _prepare_out(cfg, out, dist)
    from .data.cifar import InMemoryImages
    tr, va = datasets["train"], datasets["val"]
    train_all = InMemoryImages(torch.cat([tr.images, va.images]), torch.cat([tr.targets, va.targets]), tr.classes)
    net = space.build(arch)
    loader = _loader(cfg, train_all, True, dist)
    logger = RunLogger(out, rank=dist.rank)
    logger.info("retraining %s (%.2fM params, %.1fM MACs) on %d images", space.encode(arch),
                space.params(arch) / 1e6, space.flops(arch) / 1e6, len(train_all))
    trainer = Trainer(net, StandardAlgorithm(), loader, cfg.retrain, out, dist=dist, logger=logger,
                      extra_state={"config": cfg.to_dict(), "kind": "standalone", "arch": space.encode(arch)})
    trainer.fit(resume=resume)
    model = trainer.ema.module if trainer.ema is not None else trainer.module
    test = BatchLoader(datasets["test"], cfg.data.eval_batch_size, shuffle=False, augment=False,
                       drop_last=False, rank=dist.rank, world_size=dist.world_size)
    metrics = evaluate_accuracy(model, test, dist.device, amp=cfg.retrain.amp)
    flops, params = space.cost(arch)
    res = {"arch": space.encode(arch), "top1": float(metrics["top1"]), "test_loss": float(metrics["loss"]),
           "params": int(params), "flops": int(flops), "test_images": len(datasets["test"]),
           "train_images": len(train_all), "steps": trainer.step}
    bench = benchmark_for(cfg, space)
    if bench is not None:  # regret against the best under the search's FLOPs budget, if any
        budget = _flops_range(cfg)
        res["benchmark"] = bench.summary(arch, budget[1] if budget else None)
    if dist.is_main:
        atomic_write_json(res, out / "result.json")
        logger.info("test top-1 %.2f%%", res["top1"])
    logger.close()
    return res


def rank_archs(bench, space, n: int, seed: int) -> list[tuple]:
    """``n`` distinct benchmark architectures drawn with ``seed`` (the rank_eval sample)."""
    rng = np.random.default_rng(int(seed))
    keys = list(bench)
    return [space.decode(keys[i]) for i in rng.choice(len(keys), size=n, replace=False)]


class IndicatorTracker(HookBase):
    """Logs the BN indicator's Kendall tau against the benchmark during supernet training.

    Every ``interval`` optimizer steps (and before the first and after the
    last step) scores the fixed :func:`rank_archs` sample with the
    :class:`~nasbench.algorithms.indicator.BNIndicatorEvaluator` of the
    current weights (no data, milliseconds) and appends
    ``{"step", "epoch", "kendall_tau", "spearman"}`` to ``out/indicator_tau.json``
    and to the log (``indicator/kendall_tau``); at the end it plots the curve
    beside the FLOPs proxy (``out/indicator_tau.png``). Rank 0 only. On resume the
    file's entries up to the resumed step are kept.
    """

    def __init__(self, bench, space, archs, interval: int, out):
        self.bench, self.space, self.archs = bench, space, archs
        self.interval = int(interval)
        self.path = Path(out) / "indicator_tau.json"
        self.true = np.array([bench.query(a)[bench.metric] for a in archs])
        self.history: list = []

    def _measure(self, trainer):
        from .algorithms.indicator import BNIndicatorEvaluator
        from .metrics.ranking import rank_correlations
        if not trainer.dist.is_main or (self.history and self.history[-1]["step"] == trainer.step):
            return
        ev = BNIndicatorEvaluator(trainer.module)
        corr = rank_correlations(np.array([ev.score(a) for a in self.archs]), self.true)
        rec = {"step": trainer.step, "epoch": trainer.step / trainer.steps_per_epoch,
               "kendall_tau": corr["kendall_tau"], "spearman": corr["spearman"]}
        self.history.append(rec)
        trainer.logger.log(trainer.step, {"kendall_tau": rec["kendall_tau"]}, prefix="indicator")
        atomic_write_json({"benchmark": self.bench.name, "num_archs": len(self.archs), "history": self.history},
                          self.path)

    def before_train(self, trainer):
        if self.path.is_file() and trainer.step > 0:
            import json
            old = json.loads(self.path.read_text()).get("history", [])
            self.history = [h for h in old if h["step"] <= trainer.step]
        self._measure(trainer)

    def after_step(self, trainer, metrics):
        if trainer.step % self.interval == 0:
            self._measure(trainer)

    def after_train(self, trainer):
        self._measure(trainer)
        if trainer.dist.is_main and self.history:
            from .metrics.plots import plot_tau_curves
            from .metrics.ranking import rank_correlations
            flops = np.array([self.space.flops(a) for a in self.archs], dtype=float)
            proxy = rank_correlations(flops, self.true)["kendall_tau"]
            plot_tau_curves({"BN indicator": ([h["epoch"] for h in self.history],
                                              [h["kendall_tau"] for h in self.history])},
                            self.path.with_suffix(".png"), reference={f"FLOPs proxy {proxy:.3f}": proxy},
                            title=f"BN indicator on {len(self.archs)} {self.bench.name} archs during training")


def rank_eval(cfg: Config, ckpt, out, num_archs: int | None = None) -> dict:
    """Rank correlation of supernet scores with the benchmark on seeded random architectures."""
    from .metrics.ranking import banded_correlations, rank_correlations
    dist = D.init_distributed(device=cfg.device)
    space, supernet, algorithm = load_supernet(cfg, ckpt, dist.device)
    bench = benchmark_for(cfg, space)
    if bench is None:
        raise ConfigError(f"rank_eval needs a tabular benchmark for {space.name} (set benchmark.name)")
    n = int(num_archs or cfg.rank_eval.num_archs)
    if not 2 <= n <= len(bench):
        raise ConfigError(f"--num-archs must lie in [2, {len(bench)}], got {n}")
    kind = evaluator_type(cfg, algorithm)
    if kind == "accuracy":
        check_amp(cfg, dist.device, "train.amp")
    datasets = load_datasets(cfg) if kind == "accuracy" else None
    out = _prepare_out(cfg, out, dist)
    archs = rank_archs(bench, space, n, int(cfg.seed))
    evaluator = DistributedEvaluator(make_evaluator(cfg, supernet, algorithm, datasets, dist.device))
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
        from .metrics.plots import plot_rank_scatter
        plot_rank_scatter(pred, true, flops, out / "rank_scatter.png",
                          title=f"{cfg.algorithm.type} ({kind}) on {bench.name}: Kendall tau {corr['kendall_tau']:.3f} "
                                f"(banded {banded['kendall_tau']:.3f}, FLOPs proxy {proxy['kendall_tau']:.3f})")
        atomic_write_json(res, out / "rank.json")
    return res


__all__ = ["check_amp", "load_datasets", "train_supernet", "search", "retrain", "rank_eval", "load_supernet",
           "make_evaluator", "evaluator_type", "benchmark_for", "read_arch", "write_fairness", "rank_archs",
           "IndicatorTracker", "ArchError"]
