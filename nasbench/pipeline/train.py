"""Stage 1: supernet training (``tools/train_supernet.py``).

    train_supernet(cfg, out) -> out/{config.yaml, log.jsonl, tb/, checkpoints/last.pth,
                                     the algorithm's reports (e.g. fairness.json),
                                     indicator_tau.{json,png} (if tracked)}
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..algorithms import build_algorithm
from ..config import Config
from ..engine import dist as D
from ..engine.logger import RunLogger
from ..engine.trainer import HookBase, Trainer
from ..errors import ConfigError, NasbenchError
from ..registry import EVALUATORS
from ..spaces import build_space
from ..utils import atomic_write_json, read_json
from .common import benchmark_for, check_amp, check_out_path, check_steps, load_datasets, load_resume_state, loader_factory, prepare_out, rank_archs, seed_all

__all__ = ["train_supernet", "TauTracker"]


def train_supernet(cfg: Config, out, resume: bool = False, stop_after: int | None = None) -> Path:
    """Train the supernet of ``cfg.space`` with ``cfg.algorithm`` (see module doc).

    ``stop_after`` stops with a checkpoint after that many steps, as a preempted
    job would; ``resume=True`` continues from ``out/checkpoints/last.pth``.

    Raises:
        NasbenchError: ``resume`` without a checkpoint, bad data, or a config error.
    """
    check_out_path(out)
    dist = D.init_distributed(device=cfg.device)
    check_amp(cfg, dist.device, "train.amp")
    seed_all(int(cfg.seed))
    space = build_space(cfg.space, num_classes=cfg.data.num_classes)
    state = load_resume_state(out) if resume else None
    datasets = load_datasets(cfg)
    supernet = space.build_supernet()
    algorithm = build_algorithm(cfg.algorithm, space, seed=cfg.seed)
    tracker = make_tracker(cfg, space, supernet)  # checks the tracked evaluator before writing
    loader = algorithm.train_loader(loader_factory(cfg, datasets, dist))
    check_steps(cfg.train, len(loader), "train")
    out = prepare_out(cfg, out, dist)
    if tracker is not None:
        tracker.path = Path(out) / "indicator_tau.json"
    supernet.set_sync_bn(bool(cfg.train.sync_bn) and dist.distributed)
    logger = RunLogger(out, rank=dist.rank)
    logger.info("supernet %s (%s): %.2fM params, %d train / %d val images, %d steps/epoch",
                space.name, cfg.algorithm.type, sum(p.numel() for p in supernet.parameters()) / 1e6,
                len(datasets["train"]), len(datasets["val"]), len(loader))
    logger.log(0, {"train_images": len(datasets["train"]), "val_images": len(datasets["val"])}, prefix="data")
    train_cfg = Config({**cfg.train, "sync_bn": False})  # the supernet syncs its own BN
    trainer = Trainer(supernet, algorithm, loader, train_cfg, out, dist=dist, logger=logger,
                      hooks=[tracker] if tracker is not None else [],
                      extra_state={"config": cfg.to_dict(), "kind": "supernet"})
    trainer.fit(resume=state if resume else False, stop_after=stop_after)
    if dist.is_main:
        algorithm.write_reports(out, label=cfg.algorithm.type)
    logger.close()
    return out / "checkpoints" / "last.pth"


def make_tracker(cfg, space, supernet):
    """The :class:`TauTracker` of ``rank_eval.track_interval`` / ``track_evaluator``, or None.

    Every rank loads the benchmark (only rank 0 measures): a missing file must stop
    all ranks alike, not leave the others waiting in the first all-reduce.

    Raises:
        ConfigError: no benchmark for the space, an evaluator that needs data, or one
            that cannot score this supernet.
    """
    interval = cfg.rank_eval.track_interval
    if not interval:
        return None
    kind = cfg.rank_eval.track_evaluator
    cls = EVALUATORS.get(kind)
    if cls.needs_data:
        raise ConfigError(f"rank_eval.track_evaluator {kind} needs data; tracking during training takes a "
                          "data-free evaluator (e.g. bn_indicator)")
    cls.check(supernet)
    bench = benchmark_for(cfg, space)
    if bench is None:
        raise ConfigError("rank_eval.track_interval needs a tabular benchmark for the space (benchmark.name)")
    archs = rank_archs(bench, space, int(cfg.rank_eval.num_archs), int(cfg.seed))
    return TauTracker(bench, space, archs, int(interval), None, lambda module: cls.from_config({}, _Ctx(module)),
                      label=kind)


class _Ctx:
    def __init__(self, supernet):
        self.supernet = supernet


class TauTracker(HookBase):
    """Logs a data-free evaluator's Kendall tau against the benchmark during supernet training.

    Every ``interval`` optimizer steps (and before the first and after the
    last step) scores the fixed :func:`~nasbench.pipeline.common.rank_archs`
    sample with ``make_evaluator(current weights)`` (e.g. the BN-NAS indicator:
    no data, milliseconds) and appends ``{"step", "epoch", "kendall_tau",
    "spearman"}`` to ``indicator_tau.json`` in the run folder and to the log
    (``indicator/kendall_tau``); at the end it plots the curve beside the
    FLOPs proxy (``indicator_tau.png``). Rank 0 only. On resume the file's
    entries up to the resumed step are kept.
    """

    def __init__(self, bench, space, archs, interval: int, out, make_evaluator, label: str = "evaluator"):
        self.bench, self.space, self.archs = bench, space, archs
        self.interval = int(interval)
        self.path = None if out is None else Path(out) / "indicator_tau.json"
        self.make_evaluator, self.label = make_evaluator, label
        self.true = np.array([bench.query(a)[bench.metric] for a in archs])
        self.history: list = []

    def _measure(self, trainer):
        from ..metrics.ranking import rank_correlations
        if not trainer.dist.is_main or (self.history and self.history[-1]["step"] == trainer.step):
            return
        ev = self.make_evaluator(trainer.module)
        corr = rank_correlations(np.array([r["score"] for r in ev.evaluate(self.archs)]), self.true)
        rec = {"step": trainer.step, "epoch": trainer.step / trainer.steps_per_epoch,
               "kendall_tau": corr["kendall_tau"], "spearman": corr["spearman"]}
        self.history.append(rec)
        trainer.logger.log(trainer.step, {"kendall_tau": rec["kendall_tau"]}, prefix="indicator")
        atomic_write_json({"benchmark": self.bench.name, "num_archs": len(self.archs), "history": self.history},
                          self.path)

    def before_train(self, trainer):
        if self.path.is_file() and trainer.step > 0:
            old = read_json(self.path, "indicator history")
            old = old.get("history") if isinstance(old, dict) else None
            if not isinstance(old, list) or not all(isinstance(h, dict) and isinstance(h.get("step"), int)
                                                    for h in old):
                raise NasbenchError(f"{self.path}: not an indicator history ({{'history': [{{'step', ...}}]}}); "
                                    "delete it to start the history afresh")
            self.history = [h for h in old if h["step"] <= trainer.step]
        self._measure(trainer)

    def after_step(self, trainer, metrics):
        if trainer.step % self.interval == 0:
            self._measure(trainer)

    def after_train(self, trainer):
        self._measure(trainer)
        if trainer.dist.is_main and self.history:
            from ..metrics.plots import plot_tau_curves
            from ..metrics.ranking import rank_correlations
            flops = np.array([self.space.flops(a) for a in self.archs], dtype=float)
            proxy = rank_correlations(flops, self.true)["kendall_tau"]
            plot_tau_curves({self.label: ([h["epoch"] for h in self.history],
                                          [h["kendall_tau"] for h in self.history])},
                            self.path.with_suffix(".png"), reference={f"FLOPs proxy {proxy:.3f}": proxy},
                            title=f"{self.label} on {len(self.archs)} {self.bench.name} archs during training")
