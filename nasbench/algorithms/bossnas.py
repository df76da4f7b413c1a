"""BossNAS: block-wise siamese self-supervised supernet training, ensemble bootstrapping, population-centre rating.

Source: [BOSS] arXiv 2103.12424 (ICCV'21) and changlin31/BossNAS:
``searching/bossnas/models/siamese_supernets/siamese_supernets_nats.py`` (online/target
forward, ensemble target, BN shuffle), ``hooks/val_hook.py`` (``ValNATSPathHook``: rating,
best path, new optimizer per block), ``hooks/path_hook.py`` (``FairPathHook``), the BYOL
momentum hook, ``configs/nats_c10_bs256_accumulate4_gpus4.py``. METHODS.md section 3.

One optimizer step of the trainer (``algorithm.type: bossnas``) is ``update_interval``
loader batches; for each batch (two augmented views ``v1, v2`` ``[b, 3, H, W]``):

1. the ``K`` paths of the current block are drawn by the space's ``sample_block_paths``:
   fair sampling on NATS and MBConv (each layer of the block gets a random permutation of
   its choices; ``K`` = number of choices, 8 on NATS, 4 on MBConv), ``K`` = 4 random
   candidates on HyTra (whose candidates follow the chosen earlier blocks);
2. blocks before the current one run their frozen best paths (no gradient) in both nets;
3. target (EMA net, no gradient, batch shuffled across ranks under DDP): for every path
   the projections of both views, L2-normalised, averaged over the ``K`` paths
   (:func:`ensemble_target`) -> ``T1, T2 [b, D]``;
4. online: for every path ``loss = l(q(v1), T2) + l(q(v2), T1)`` with
   ``l(p, z) = -2 cos(p, z)`` (:func:`byol_loss`), backward per path scaled by
   ``1 / update_interval``;
5. after the last batch the gradients are averaged over ranks, exactly-zero gradients are
   dropped, LARS (``timm.optim.Lars``, BN and biases without weight decay and trust ratio)
   steps at the run's warm-up + cosine LR (:func:`nasbench.engine.optim.build_scheduler`
   over the whole run), and the target follows the online weights with the momentum
   :func:`ema_momentum` (cosine from ``base_momentum`` to 1 over the whole run).

At the end of every ``interval``-th epoch of a block and at its last epoch the block is
rated (:meth:`BossNAS.rate_block`): for each candidate path the BNs it uses are
recalibrated on one fixed training batch, the population centre is the mean of the
(un-normalised) target projections of *all* candidates on fixed validation views
(:func:`population_centre`), and a path's loss is ``l(q(v1), c2) + l(q(v2), c1)``
averaged over the validation images. After ``epochs_per_block`` epochs the best (lowest)
path is frozen, the next block starts with a new optimizer. The tables are written as
``bossnas/ratings.json`` and ``bossnas/path_rank_{block}.yml`` (reference format), and
the registered evaluator ``bossnas_rating`` rates every architecture as
``sum_b (loss_b + 4)`` and answers the greedy block-wise search (best path per block).

Where this differs from the reference (stated, deliberate):

* blocks before the current one are frozen (the issue's rule); the reference's online
  backbone also passes gradients into them;
* the EMA covers the target's adapters as well (the reference never updates its target
  ``channels_fix`` adapters, which stay at their initial weights);
* BN recalibration averages the statistics of both views of the fixed batch (reference:
  momentum 1, i.e. the statistics of the last forward);
* the two views are drawn by :func:`nasbench.data.loader.shift_flip` (4-pixel zero padding,
  random 32x32 crop, horizontal flip, per image: torchvision's ``RandomCrop(32, padding=4)``
  + ``RandomHorizontalFlip`` as a seeded batch operation), so every batch is reproducible
  for exact resume; ``update_interval`` batches form one trainer step.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.loader import BatchLoader, batch_seed, shift_flip
from ..engine import dist as D
from ..errors import ConfigError, NasbenchError
from ..registry import ALGORITHMS, EVALUATORS, Key
from ..spaces.blockwise import fair_paths
from ..supernets.base import BlockwiseSupernet
from .base import Algorithm
from .bossnas_views import byol_views_of_shard
from .bossnas_ratings import (RATING_OFFSET, BossRatingEvaluator, rating_file_name, rating_history, rating_report,
                              read_block_ratings, write_rating_file)

__all__ = ["BossNAS", "BossGreedyEvaluator", "TwoViewLoader", "GroupedLoader", "byol_loss", "ensemble_target",
           "population_centre", "ema_momentum", "fair_paths", "PairedViews"]


# ---------------------------------------------------------------------------- math
def byol_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``-2 cos(pred, target)`` averaged over the batch (``[N, D]`` each; scalar in [-2, 2]).

    The reference's ``LatentPredictHead`` loss (both inputs L2-normalised first)."""
    return -2.0 * (F.normalize(pred, dim=1) * F.normalize(target, dim=1)).sum(dim=1).mean()


def ensemble_target(projections) -> torch.Tensor:
    """Ensemble-bootstrapping target: mean over paths of the L2-normalised projections.

    ``projections``: ``K`` tensors ``[N, D]`` (one per sampled path) -> ``[N, D]``."""
    return torch.stack([F.normalize(p, dim=1) for p in projections]).mean(dim=0)


def population_centre(projections) -> torch.Tensor:
    """Rating target: the mean of the *un-normalised* projections of all candidates ``[N, D]`` -> ``[N, D]``."""
    return torch.stack(list(projections)).mean(dim=0)


def ema_momentum(t: float, total: float, base: float = 0.99) -> float:
    """Target momentum at iteration ``t`` of ``total``: ``1 - (1 - base) (cos(pi t / total) + 1) / 2``
    (BYOL's schedule, ``base`` at ``t = 0``, 1 at ``t = total``)."""
    return 1.0 - (1.0 - base) * (math.cos(math.pi * min(t, total) / total) + 1.0) / 2.0


# ---------------------------------------------------------------------------- data
class TwoViewLoader(BatchLoader):
    """A :class:`BatchLoader` yielding two independently augmented views ``(v1, v2)`` of each batch.

    Each view is 4-pixel zero padding + random crop + horizontal flip (CIFAR, BossNAS's NATS
    pipeline), drawn from its own generator seeded by ``(seed, epoch, batch, view)``, then
    normalised; ``v1, v2`` are ``float32 [b, C, H, W]``. With ``views = "byol"`` each view is
    BYOL's asymmetric ImageNet pipeline instead
    (:func:`~nasbench.algorithms.bossnas_views.byol_views_of_shard`, same seeding).
    Sharding, order and resume are the base loader's.
    """

    #: ``"crop_flip"`` (the CIFAR pipeline above) or ``"byol"`` (:mod:`.bossnas_views`: BYOL's
    #: asymmetric ImageNet pipeline)
    views = "crop_flip"

    @classmethod
    def like(cls, loader, shuffle=None, seed=None, views="crop_flip"):
        """A two-view loader over ``loader``'s data, batch size, sharding and normalisation.

        A loader that is not a :class:`BatchLoader` (e.g. gpu_check's fixed synthetic batch)
        is wrapped by :class:`PairedViews` instead."""
        if not isinstance(loader, BatchLoader):
            return PairedViews(loader)
        tv = cls(loader.data, loader.batch_size, loader.shuffle if shuffle is None else shuffle, True,
                 seed=loader.seed if seed is None else seed, drop_last=loader.drop_last, rank=loader.rank,
                 world_size=loader.world_size, mean=loader.mean, std=loader.std, device=loader.device,
                 pad=loader.pad)
        tv.views = views
        return tv

    def epoch(self, epoch: int, start: int = 0):
        n_batches = len(self)
        if not 0 <= int(start) <= n_batches:
            raise ValueError(f"start={start} outside [0, {n_batches}]")
        order = self.order(epoch)
        for i in range(int(start), n_batches):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            lo, hi = self._shard(len(idx))
            x = self.data.images.index_select(0, idx[lo:hi]).to(self.device).float()
            views = []
            for v in (1, 2):
                g = torch.Generator().manual_seed(batch_seed(self.seed * 7 + v, epoch, i))
                if self.views == "byol":
                    y = byol_views_of_shard(x, g, len(idx), lo, v)
                    views.append(y.mul_(self._scale).sub_(self._shift))
                    continue
                shifts = torch.randint(-self.pad, self.pad + 1, (2, len(idx)), generator=g)
                flips = torch.randint(0, 2, (len(idx),), generator=g).bool()
                y = shift_flip(x, shifts[0, lo:hi], shifts[1, lo:hi], flips[lo:hi], self.pad)
                views.append(y.mul_(self._scale).sub_(self._shift))
            yield tuple(views)


class PairedViews:
    """Two views ``(x, flip(x))`` of the images of each batch of any loader (``len`` + ``epoch``)
    whose batches are ``(images, ...)``: a stand-in for :class:`TwoViewLoader` on synthetic data."""

    def __init__(self, loader):
        self.loader = loader

    def __len__(self):
        return len(self.loader)

    def epoch(self, epoch: int, start: int = 0):
        for b in self.loader.epoch(epoch, start=start):
            x = b[0] if isinstance(b, (tuple, list)) else b
            yield x, x.flip(3)


class GroupedLoader:
    """``update_interval`` consecutive batches of ``loader`` as one item (one optimizer step).

    ``len`` = ``len(loader) // n``; ``epoch(e, start=i)`` yields lists of ``n`` batches
    beginning at group ``i`` (batch ``i * n``), so resume stays exact."""

    def __init__(self, loader, n: int):
        self.loader, self.n = loader, int(n)

    def __len__(self):
        return len(self.loader) // self.n

    def epoch(self, epoch: int, start: int = 0):
        group = []
        for b in self.loader.epoch(epoch, start=int(start) * self.n):
            group.append(b)
            if len(group) == self.n:
                yield group
                group = []


# ---------------------------------------------------------------------------- algorithm
@ALGORITHMS.register("bossnas")
class BossNAS(Algorithm):
    """BossNAS on any block-wise space with a siamese supernet (NATS-Bench Ss, MBConv, HyTra).

    What it asks (no space is named here): the space's ``num_blocks``,
    ``block_candidates(block, prefix)`` (keys rated for a block after the chosen keys of the
    earlier blocks), ``sample_block_paths(block, prefix, rng)`` (paths trained together in a
    step), ``arch_from_block_keys``; the supernet's ``forward_block(x, block, path)``,
    ``project``, ``predict`` (``[N, D]``), ``block_modules(block)`` (whose BNs a rating
    recalibrates) and ``block_parameters(block)``.

    Args:
        space: a block-wise space whose supernet has per-block projectors and predictors
            (:class:`~nasbench.spaces.bossnas_nats.BossNASNATSSpace`,
            :class:`~nasbench.spaces.bossnas_mbconv.BossNASMBConvSpace`,
            :class:`~nasbench.spaces.hytra.HyTraSpace`).
        seed: seed of the path sampler (identical on every rank).
        epochs_per_block, interval, update_interval, base_momentum, trust_coeff,
        bn_batch_size, rating_images, views: see :attr:`KEYS`.

    Raises:
        ConfigError: a space without blocks, or ``train.epochs`` not a multiple of the number of
            blocks when ``epochs_per_block`` is null (at the first step). A run shorter than
            ``epochs_per_block`` x blocks only warns (its last blocks are never rated).
    """

    KEYS = {
        "epochs_per_block": Key(None, "epochs each block is trained (null: train.epochs / number of blocks)",
                                int, (1, None), unit="epochs", nullable=True),
        "interval": Key(10, "rate the current block every this many of its epochs (and at its last)", int,
                        (1, None), unit="epochs"),
        "update_interval": Key(1, "loader batches whose gradients are accumulated per optimizer step", int,
                               (1, None), unit="count"),
        "base_momentum": Key(0.99, "target EMA momentum at the start (cosine to 1 over the whole run)", float,
                             (0.0, 1.0)),
        "trust_coeff": Key(0.001, "LARS trust coefficient (timm.optim.Lars)", float, (0.0, None)),
        "bn_batch_size": Key(256, "images of the fixed training batch that recalibrates BN before rating", int,
                             (2, None), unit="images"),
        "rating_images": Key(None, "validation images (two fixed views each) a path is rated on "
                                   "(null: the whole validation split)", int, (1, None), unit="images",
                             nullable=True),
        "views": Key("crop_flip", "the two views: crop_flip (pad-crop + flip, CIFAR) or byol (BYOL's asymmetric "
                                  "ImageNet pipeline: resized crop, flip, colour jitter, grayscale, blur, solarise)",
                     str, choices=("crop_flip", "byol")),
    }
    default_evaluator = "bossnas_rating"
    find_unused_parameters = True
    owns_optimizer = True

    def __init__(self, space, seed=0, epochs_per_block=None, interval=10, update_interval=1, base_momentum=0.99,
                 trust_coeff=0.001, bn_batch_size=256, rating_images=None, views="crop_flip"):
        super().__init__(space, seed)
        missing = [n for n in ("num_blocks", "build_supernet", "block_candidates", "sample_block_paths",
                               "arch_from_block_keys") if not hasattr(space, n)]
        if missing:
            raise ConfigError(f"algorithm bossnas needs a block-wise space with a siamese supernet (e.g. "
                              f"bossnas_nats, bossnas_mbconv, hytra); {space.name} has no {', '.join(missing)}")
        self.epochs_per_block = None if epochs_per_block is None else int(epochs_per_block)
        self.interval, self.update_interval = int(interval), int(update_interval)
        self.base_momentum, self.trust_coeff = float(base_momentum), float(trust_coeff)
        self.bn_batch_size = int(bn_batch_size)
        self.rating_images = None if rating_images is None else int(rating_images)
        self.views = str(views)
        self.block = 0
        self.best_keys: list[str] = []          # frozen best path (block key) of every finished block
        self.tables: list[dict] = []            # latest rating of every block rated so far
        self.history: list[dict] = []           # every rating: {"epoch", "block", "table"}
        self.module = self.target = None
        self.optimizer = self.scheduler = None
        self._pending_optimizer = None
        self.val_loader = self.bn_loader = None
        self.train_cfg = None

    # -- protocol -------------------------------------------------------------------
    def train_loader(self, make_loader):
        """Groups of ``update_interval`` two-view training batches; keeps the fixed rating data."""
        base = make_loader("train", True)
        seed = getattr(base, "seed", 0)
        self.bn_loader = TwoViewLoader.like(make_loader("train", False, batch_size=self.bn_batch_size),
                                            shuffle=True, seed=seed + 1, views=self.views)
        self.val_loader = TwoViewLoader.like(make_loader("val", False), seed=seed + 2, views=self.views)
        return GroupedLoader(TwoViewLoader.like(base, views=self.views), self.update_interval)

    def setup(self, module, train_cfg) -> None:
        """Keep the online supernet and build the target: a frozen copy (BYOL: same initial weights)."""
        if not isinstance(module, BlockwiseSupernet):
            raise ConfigError(f"algorithm bossnas: {type(module).__name__} is not a block-wise supernet (use a "
                              "space of family 'blockwise', e.g. bossnas_nats, bossnas_mbconv or hytra)")
        self.module, self.train_cfg = module, train_cfg
        self.target = copy.deepcopy(module)
        for p in self.target.parameters():
            p.requires_grad_(False)
        for b in range(self.space.num_blocks):  # only the current block's parameters get gradients
            for p in module.block_parameters(b):
                p.requires_grad_(b == self.block)

    def make_evaluator(self, eval_cfg, ctx):
        return EVALUATORS.get(eval_cfg["type"]).from_config({}, ctx)

    def loss_history(self) -> list:
        return []

    def rating_file_report(self, directory, benchmark) -> dict:
        """Rate every architecture of ``benchmark`` from ``directory/path_rank_{b}.yml`` (one file per
        block, reference format, read safely) as ``sum_b (loss_b + 4)``; see
        :func:`~nasbench.algorithms.bossnas_ratings.rating_report` (the correlations are of the
        negated rating). Where ``directory/ratings.json`` (written by a training run) holds the
        run's rating history, ``"history"`` adds the correlations after each rating epoch
        (:func:`~nasbench.algorithms.bossnas_ratings.rating_history`). Raises DataNotFoundError /
        NasbenchError for missing or malformed files."""
        import json
        rep = rating_report(self.space, read_block_ratings(directory, self.space.num_blocks), benchmark)
        path = Path(directory) / "ratings.json"
        if path.is_file():
            try:
                history = json.loads(path.read_text())["history"]
            except (ValueError, KeyError, TypeError) as e:
                raise NasbenchError(f"{path}: not a BossNAS ratings.json ({type(e).__name__}: {e})") from None
            rep["history"] = rating_history(self.space, history, benchmark)
        return rep

    # -- training -------------------------------------------------------------------
    def _check_schedule(self, ctx):
        from ..engine.optim import train_value
        n = self.space.num_blocks
        epochs = ctx.total_steps / ctx.steps_per_epoch  # what the run trains (train.max_steps may cut it)
        if self.epochs_per_block is None:
            planned = float(train_value(self.train_cfg, "epochs"))
            if planned != int(planned) or int(planned) % n:
                raise ConfigError(f"bossnas: train.epochs ({planned:g}) must be a multiple of the {n} blocks "
                                  "(or set algorithm.epochs_per_block)")
            self.epochs_per_block = int(planned) // n
        if self.epochs_per_block * n > epochs:  # a short run (max_steps, a throughput probe): allowed, said
            import warnings
            warnings.warn(f"bossnas: the run has {epochs:g} epochs, fewer than epochs_per_block "
                          f"({self.epochs_per_block}) x {n} blocks; the last blocks will never be rated and "
                          "the search needs every block", stacklevel=2)

    def _build_optimizer(self, ctx):
        from timm.optim import Lars

        from ..engine.optim import build_scheduler, train_value
        cfg = self.train_cfg
        params = [p for p in self.module.block_parameters(self.block)]
        wd = float(train_value(cfg, "weight_decay") or 0.0)
        groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": wd},
                  {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]  # BN, bias: no wd, no LARS
        self.optimizer = Lars(groups, lr=float(train_value(cfg, "lr")), momentum=float(train_value(cfg, "momentum")),
                              trust_coeff=self.trust_coeff)
        if self._pending_optimizer is not None:
            self.optimizer.load_state_dict(self._pending_optimizer)
            self._pending_optimizer = None
        self.scheduler = build_scheduler(self.optimizer, cfg, ctx.steps_per_epoch)
        self.scheduler.step_update(num_updates=ctx.step)

    def _prefix(self, net, x):
        """Blocks before the current one on their frozen best paths (no gradient)."""
        with torch.no_grad():
            for b, key in enumerate(self.best_keys[:self.block]):
                x = net.forward_block(x, b, key)
        return x

    def _shuffled(self, fn, x):
        """``fn(x)`` with the batch shuffled across ranks (BN shuffle); ``fn(x)`` in one process."""
        if not D.is_dist():
            return fn(x)
        world, rank = D.get_world_size(), D.get_rank()
        xs = [torch.empty_like(x) for _ in range(world)]
        torch.distributed.all_gather(xs, x.contiguous())
        perm = torch.as_tensor(self.rng.permutation(len(x) * world), device=x.device)  # same on every rank
        mine = torch.cat(xs)[perm.view(world, -1)[rank]]
        y = fn(mine)
        ys = [torch.empty_like(y) for _ in range(world)]
        torch.distributed.all_gather(ys, y.contiguous())
        return torch.cat(ys)[torch.argsort(perm).view(world, -1)[rank]]

    def _targets(self, v1, v2, paths):
        """Ensemble targets ``(T1, T2)`` of the sampled ``paths`` (target net, no gradient)."""
        b = self.block
        with torch.no_grad():
            t1, t2 = self._prefix(self.target, v1), self._prefix(self.target, v2)
            z1 = [self._shuffled(lambda x: self.target.project(x, b, p), t1) for p in paths]
            z2 = [self._shuffled(lambda x: self.target.project(x, b, p), t2) for p in paths]
        return ensemble_target(z1), ensemble_target(z2)

    def train_step(self, ctx, batch) -> dict:
        """One optimizer step over ``update_interval`` two-view batches (see module doc).

        ``batch``: list of ``(v1, v2)`` pairs ``[b, 3, H, W]``. Returns ``{"loss": mean
        path loss, "momentum", "block", "lars_lr"}`` (the trainer's own ``lr`` column is its
        unused SGD's)."""
        if self.optimizer is None:
            if self.epochs_per_block is None or ctx.step == 0:
                self._check_schedule(ctx)
            self._build_optimizer(ctx)
        b, total, n = self.block, 0.0, 0
        for v1, v2 in batch:
            paths = self.space.sample_block_paths(b, self.best_keys[:b], self.rng)
            tg1, tg2 = self._targets(v1, v2, paths)
            o1, o2 = self._prefix(self.module, v1), self._prefix(self.module, v2)
            for p in paths:
                with ctx.autocast():
                    loss = (byol_loss(self.module.predict(o1, b, p).float(), tg2)
                            + byol_loss(self.module.predict(o2, b, p).float(), tg1))
                (loss / self.update_interval).backward()
                total += float(loss.detach())
                n += 1
        lr = self.optimizer.param_groups[0]["lr"]  # the LR of this step
        self._optimizer_step(ctx)
        m = ema_momentum(ctx.step + 1, ctx.total_steps, self.base_momentum)
        self._ema(m)
        if (ctx.step + 1) % ctx.steps_per_epoch == 0:
            self._epoch_end((ctx.step + 1) // ctx.steps_per_epoch, ctx)
        return {"loss": total / max(n, 1), "momentum": m, "block": float(b),
                "lars_lr": lr}

    def _optimizer_step(self, ctx):
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        if D.is_dist():  # gradients are averaged here: the online net runs outside DDP's forward
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            flat = D.all_reduce_mean(torch.cat([g.reshape(-1) for g in grads]))
            i = 0
            for p in params:
                p.grad = flat[i:i + p.numel()].view_as(p).clone()
                i += p.numel()
        for p in params:  # the reference's optimizer hook drops exactly-zero gradients
            if p.grad is not None and not torch.any(p.grad):
                p.grad = None
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step_update(num_updates=ctx.step + 1)

    @torch.no_grad()
    def _ema(self, m: float):
        online = dict(self.module.named_parameters())
        tp, op = [], []
        for name, p in self.target.named_parameters():
            tp.append(p)
            op.append(online[name].detach())
        torch._foreach_lerp_(tp, op, 1.0 - m)

    def _epoch_end(self, epoch: int, ctx):
        """Rate every ``interval`` epochs of a block and at its last; then freeze it and move on.
        Epochs after the last block's ``epochs_per_block`` keep training (and rating) the last block."""
        e = epoch - self.block * self.epochs_per_block
        if e % self.interval and e != self.epochs_per_block:
            return
        table = self.rate_block(self.block, ctx.device)
        if len(self.tables) > self.block:
            self.tables[self.block] = table
        else:
            self.tables.append(table)
        self.history.append({"epoch": epoch, "block": self.block, "table": table})
        if e >= self.epochs_per_block:
            self.best_keys[self.block:] = [min(table, key=table.get)]
            if self.block + 1 < self.space.num_blocks:
                self._advance()

    def _advance(self):
        """Freeze the current block and start the next one with a new optimizer."""
        self.block += 1
        self.optimizer = self.scheduler = None
        for b in range(self.space.num_blocks):
            for p in self.module.block_parameters(b):
                p.requires_grad_(b == self.block)

    # -- rating ---------------------------------------------------------------------
    def _rating_data(self, device):
        if self.val_loader is None:
            raise NasbenchError("bossnas: rating needs the loaders of train_loader()")
        bn = next(iter(self.bn_loader.epoch(0)))
        val, n = [], 0
        for v1, v2 in self.val_loader.epoch(0):
            if self.rating_images is not None and n >= self.rating_images:
                break
            if self.rating_images is not None:
                v1, v2 = v1[:self.rating_images - n], v2[:self.rating_images - n]
            val.append((v1.to(device), v2.to(device)))
            n += len(v1)
        return tuple(t.to(device) for t in bn), val

    @staticmethod
    def _block_bns(net, block):
        """The BNs block ``block`` runs (the supernet's ``block_modules``), each once."""
        seen, out = set(), []
        for mod in net.block_modules(block):
            for m in mod.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in seen:
                    seen.add(id(m))
                    out.append(m)
        return out

    def _recalibrate_prefix(self, net, bn):
        """Recompute the BN statistics of the frozen blocks on the fixed batch; returns their outputs."""
        bns = [m for b in range(self.block) for m in self._block_bns(net, b)]
        saved = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        net.train()
        feats = [self._prefix(net, x) for x in bn]
        for m, mom in zip(bns, saved):
            m.momentum = mom
        net.eval()
        return feats

    def _recalibrate(self, nets, bn_feats, block, path):
        """Reset the BNs of ``block`` in ``nets`` and recompute them on the fixed batch with ``path``."""
        for net, feats in zip(nets, bn_feats):
            bns = self._block_bns(net, block)
            saved = [m.momentum for m in bns]
            for m in bns:
                m.reset_running_stats()
                m.momentum = None  # cumulative average over both views
            net.train()
            for x in feats:
                net.predict(x, block, path)
            for m, mom in zip(bns, saved):
                m.momentum = mom
            net.eval()

    @torch.no_grad()
    def rate_block(self, block: int, device=None) -> dict[str, float]:
        """``{block key: loss}`` of every candidate of ``block`` against the population centre.

        Each candidate: BN recalibration on the fixed training batch, then on the fixed
        validation views its target projections (summed into the centre) and its online
        predictions (kept: ``candidates x images x 2 x D`` floats). Then per candidate
        loss = ``l(q(v1), c2) + l(q(v2), c1)`` with ``c`` the mean over all candidates,
        averaged over images.
        The networks' weights and BN buffers are restored afterwards.
        """
        device = device or next(self.module.parameters()).device
        nets = (self.module, self.target)
        saved = [copy.deepcopy(net.state_dict()) for net in nets]
        modes = [net.training for net in nets]
        bn, val = self._rating_data(device)
        bn_feats = [self._recalibrate_prefix(net, bn) for net in nets]
        val_feats = [[tuple(self._prefix(net, x) for x in pair) for pair in val] for net in nets]
        keys = list(self.space.block_candidates(block, self.best_keys[:block]))
        paths = keys  # the supernet decodes block keys
        centre = [[0.0, 0.0] for _ in val]
        preds = []
        for p in paths:  # one pass: recalibrate, target projections into the centre, online predictions kept
            self._recalibrate(nets, bn_feats, block, p)
            for i, (x1, x2) in enumerate(val_feats[1]):
                centre[i][0] = centre[i][0] + self.target.project(x1, block, p)
                centre[i][1] = centre[i][1] + self.target.project(x2, block, p)
            preds.append([(self.module.predict(x1, block, p), self.module.predict(x2, block, p))
                          for x1, x2 in val_feats[0]])
        centre = [(c1 / len(paths), c2 / len(paths)) for c1, c2 in centre]  # population centre (all candidates)
        table = {}
        n_img = sum(len(x1) for x1, _ in val)
        for k, pred in zip(keys, preds):
            loss = 0.0
            for (q1, q2), (c1, c2) in zip(pred, centre):
                loss += float(byol_loss(q1, c2) + byol_loss(q2, c1)) * len(q1)
            table[k] = loss / n_img
        for net, s, mode in zip(nets, saved, modes):
            net.load_state_dict(s)
            net.train(mode)
        return table

    # -- results --------------------------------------------------------------------
    def greedy_arch(self) -> tuple:
        """The greedy block-wise search result: the best path of every block. Raises NasbenchError if unrated."""
        if len(self.best_keys) < self.space.num_blocks:
            raise NasbenchError(f"bossnas: {len(self.best_keys)} of {self.space.num_blocks} blocks have a best "
                                "path; train all blocks (train.epochs = epochs_per_block x blocks)")
        return self.space.arch_from_block_keys(self.best_keys)

    def write_reports(self, out, label: str = "") -> None:
        """``out/bossnas/ratings.json`` (every rating, best paths, greedy arch and its rating)
        and ``out/bossnas/path_rank_{block}.yml`` (each block's last table, reference format)."""
        from ..utils import atomic_write_json
        d = Path(out) / "bossnas"
        d.mkdir(parents=True, exist_ok=True)
        for b, t in enumerate(self.tables):
            write_rating_file(d / rating_file_name(b), t)
        rec = {"best_block_keys": self.best_keys, "history": self.history, "tables": self.tables}
        if len(self.best_keys) == self.space.num_blocks:
            arch = self.greedy_arch()
            rec["arch"] = self.space.encode(arch)
            rec["rating"] = sum(self.tables[b][k] + RATING_OFFSET for b, k in enumerate(self.best_keys))
        atomic_write_json(rec, d / "ratings.json")

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "block": self.block, "best_keys": list(self.best_keys),
                "tables": [dict(t) for t in self.tables], "history": list(self.history),
                "epochs_per_block": self.epochs_per_block,
                "target": None if self.target is None else self.target.state_dict(),
                "optimizer": None if self.optimizer is None else self.optimizer.state_dict()}

    def load_state_dict(self, d) -> None:
        self.rng.bit_generator.state = d["rng"]
        self.best_keys, self.tables = list(d["best_keys"]), [dict(t) for t in d["tables"]]
        self.history, self.epochs_per_block = list(d["history"]), d["epochs_per_block"]
        self.block = int(d["block"])
        if self.target is not None and d.get("target") is not None:
            self.target.load_state_dict(d["target"])
        if self.module is not None:
            for b in range(self.space.num_blocks):
                for p in self.module.block_parameters(b):
                    p.requires_grad_(b == self.block)
        self.optimizer = self.scheduler = None
        self._pending_optimizer = d.get("optimizer")


@EVALUATORS.register("bossnas_rating")
class BossGreedyEvaluator(BossRatingEvaluator):
    """The BossNAS rating of a trained run (``eval.type: bossnas_rating``): ``score = -sum_b (loss_b + 4)``.

    Built from the algorithm's block tables (in the checkpoint); :meth:`best_architecture`
    is the greedy block-wise search (best path of every block), so no searcher runs.

    Raises:
        ConfigError: the run did not rate every block.
    """

    def __init__(self, space, block_tables, best_keys):
        super().__init__(space, block_tables, prefix=best_keys)
        self.best_keys = list(best_keys)

    @classmethod
    def from_config(cls, settings, ctx):
        alg = ctx.algorithm
        if not isinstance(alg, BossNAS) or len(alg.tables) < alg.space.num_blocks:
            rated = len(getattr(alg, "tables", []))
            raise ConfigError(f"eval.type bossnas_rating needs a BossNAS run that rated all blocks "
                              f"({rated} rated); finish training first")
        return cls(alg.space, alg.tables, alg.best_keys)

    def best_architecture(self):
        arch = self.space.arch_from_block_keys(self.best_keys)
        rating = sum(self.block_tables[b][k] + RATING_OFFSET for b, k in enumerate(self.best_keys))
        return arch, {"searcher": "greedy_blockwise", "score": -rating, "rating": rating,
                      "block_keys": list(self.best_keys)}
