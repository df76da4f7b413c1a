"""Stage 3: retraining of the found architecture from scratch (``tools/retrain.py``).

    retrain(cfg, arch, out) -> out/result.json (arch, top1 on the test set, params, flops)
"""
from __future__ import annotations

import torch

from ..algorithms.supervised import StandardAlgorithm, evaluate_accuracy
from ..config import Config
from ..data import BatchLoader
from ..data.cifar import InMemoryImages
from ..engine import dist as D
from ..engine.logger import RunLogger
from ..engine.trainer import Trainer
from ..spaces import build_space
from ..utils import atomic_write_json
from .common import benchmark_for, check_amp, check_out_path, check_steps, flops_range, load_datasets, load_resume_state, make_loader, prepare_out, read_arch, seed_all

__all__ = ["retrain"]


def retrain(cfg: Config, arch, out, resume: bool = False) -> dict:
    """Train the standalone network of ``arch`` from scratch; writes ``out/result.json``.

    Trains on the whole (possibly ``data.train_size``-subsampled) training set,
    i.e. the supernet-training part plus the search-validation part, with the
    ``retrain`` section's schedule, and reports top-1 on the test set.

    Raises:
        ArchError, NasbenchError: bad architecture or data (before anything is written).
    """
    check_out_path(out)
    dist = D.init_distributed(device=cfg.device)
    check_amp(cfg, dist.device, "retrain.amp")
    seed_all(int(cfg.seed))
    space = build_space(cfg.space, num_classes=cfg.data.num_classes)
    arch = read_arch(space, arch)
    state = load_resume_state(out) if resume else None
    datasets = load_datasets(cfg)
    tr, va = datasets["train"], datasets["val"]
    train_all = InMemoryImages(torch.cat([tr.images, va.images]), torch.cat([tr.targets, va.targets]), tr.classes)
    loader = make_loader(cfg, train_all, True, dist, cutout=cfg.retrain.cutout)
    check_steps(cfg.retrain, len(loader), "retrain")
    out = prepare_out(cfg, out, dist)
    net = space.build(arch)
    logger = RunLogger(out, rank=dist.rank)
    logger.info("retraining %s (%.2fM params, %.1fM MACs) on %d images", space.encode(arch),
                space.params(arch) / 1e6, space.flops(arch) / 1e6, len(train_all))
    trainer = Trainer(net, StandardAlgorithm(num_classes=cfg.data.num_classes), loader, cfg.retrain, out, dist=dist, logger=logger,
                      extra_state={"config": cfg.to_dict(), "kind": "standalone", "arch": space.encode(arch)})
    trainer.fit(resume=state if resume else False)
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
        budget = flops_range(cfg)
        res["benchmark"] = bench.summary(arch, budget[1] if budget else None)
        res["baselines"] = bench.baselines(*(budget or (None, None)), space=space)
    if dist.is_main:
        atomic_write_json(res, out / "result.json")
        logger.info("test top-1 %.2f%%%s", res["top1"], f" (benchmark {bench.metric} of this arch "
                    f"{res['benchmark'][bench.metric]:.2f}%)" if bench is not None else "")
    logger.close()
    return res
