"""BNAS-v2: differentiable broad NAS with the confident learning rate (CLR).

Ding et al., "BNAS-v2" (arXiv 2009.08886), sections III-B/C; reference
``BNASv2CLR/train_search_b_confidence.py`` and ``architect_confidence.py``,
``BNASv2PC/train_search_b.py`` (METHODS.md section 4.3). Each step:

1. **architecture step** (from ``arch_start_epoch`` on): one batch of the
   architecture split (the ``val`` part of the training set; the algorithm
   asks for it in :meth:`BNASv2.train_loader`), loss through the
   supernet, backward, one Adam step on the architecture parameters only
   (first-order DARTS). With CLR the Adam learning rate is
   ``arch_lr * ((epoch + 1) / E) ** power`` (E = ``confidence_epochs``, default
   the run's epochs), which damps early architecture updates, when the weights
   are still poor and parameter-free operations would win. This is the
   reference's first-order form; its second-order form multiplies the loss by
   the confidence instead, which Adam, being scale-invariant, largely undoes
   (METHODS.md 4.7). The weight gradients of this pass are discarded.
2. **weight step**: the usual supervised forward/backward on the training
   batch; the trainer then clips (``train.clip_grad``, 5 in the reference) and
   takes the SGD step. Architecture parameters are not in the SGD optimizer
   (:func:`nasbench.engine.trainer.build_optimizer` leaves out
   ``module.arch_parameters()``).

Partial channels and edge normalisation (BNAS-v2 PC) are a property of the
supernet (``space.kwargs.partial``); this algorithm drives both variants, and
with ``confidence: false`` it is plain first-order DARTS on the broad network.
Second-order (unrolled) DARTS is not implemented; asking for it is a
ConfigError.
"""
from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from ..registry import ALGORITHMS, Key
from .base import SupernetAlgorithm


@ALGORITHMS.register("bnas_v2")
class BNASv2(SupernetAlgorithm):
    """Alternating architecture (Adam, CLR) and weight (trainer's SGD) steps on a DARTS supernet.

    Args:
        space: a space of family ``"darts"`` (its supernet has ``arch_parameters()`` and ``genotype()``).
        arch_lr: Adam learning rate of the architecture parameters (3e-4 CLR, 6e-4 PC).
        arch_weight_decay: Adam weight decay (1e-3).
        confidence: bool, use the confident learning rate.
        confidence_power: exponent of the confidence (2).
        confidence_epochs: ``E`` of the confidence; None = the run's epochs (50 in the paper).
        arch_start_epoch: first epoch with architecture steps (0 CLR; 15 PC on CIFAR-10).
        unrolled: second-order DARTS (not implemented).

    Raises:
        ConfigError: another space family, ``unrolled: true``, or a non-positive ``arch_lr``.
    """

    KEYS = {
        "arch_lr": Key(3e-4, "Adam learning rate of the architecture parameters", float, (0, None)),
        "arch_weight_decay": Key(1e-3, "Adam weight decay of the architecture parameters", float, (0, None)),
        "confidence": Key(True, "confident learning rate (CLR) on the architecture steps", bool),
        "confidence_power": Key(2.0, "exponent of the confidence ((epoch + 1) / E) ** power", float, (0, None)),
        "confidence_epochs": Key(None, "E of the confidence (null = the run's epochs)", float, (1, None),
                                 unit="epochs"),
        "arch_start_epoch": Key(0, "first epoch with architecture steps", int, (0, None), unit="epochs"),
        "unrolled": Key(False, "second-order DARTS (not implemented; must stay false)", bool),
    }
    eval_sides = ("left",)
    default_evaluator = "genotype"

    def __init__(self, space, seed=0, arch_lr=3e-4, arch_weight_decay=1e-3, confidence=True,
                 confidence_power=2.0, confidence_epochs=None, arch_start_epoch=0, unrolled=False):
        if space.family != "darts":
            raise ConfigError(f"algorithm bnas_v2 needs a DARTS cell space (e.g. bnas_v2), got {space.name}")
        if unrolled:
            raise ConfigError("algorithm.unrolled: second-order (unrolled) DARTS is not implemented; "
                              "use the first-order form (unrolled: false)")
        if not float(arch_lr) > 0:
            raise ConfigError(f"algorithm.arch_lr must be positive, got {arch_lr}")
        super().__init__(space, seed=seed)
        self.arch_lr, self.arch_weight_decay = float(arch_lr), float(arch_weight_decay)
        self.confidence, self.confidence_power = bool(confidence), float(confidence_power)
        self.confidence_epochs = None if confidence_epochs is None else float(confidence_epochs)
        self.arch_start_epoch = int(arch_start_epoch)
        self.arch_loader = None
        self._arch_iter, self._arch_next = None, None
        self.arch_optimizer = None
        self._pending_state = None

    # -- pipeline and trainer hooks ---------------------------------------------
    def train_loader(self, make_loader):
        """The weights train on the ``train`` split; the architecture steps on the ``val`` split
        (:attr:`arch_loader`, loader seed offset 104729)."""
        self.arch_loader = make_loader("val", True, seed_offset=104729)
        return make_loader("train", True)

    def setup(self, module, train_cfg) -> None:
        """Build the loss and the Adam optimizer of ``module.arch_parameters()`` (reference betas (0.5, 0.999))."""
        super().setup(module, train_cfg)
        self._arch_adam(module)

    def _arch_adam(self, module) -> None:
        self.arch_optimizer = torch.optim.Adam(module.arch_parameters(), lr=self.arch_lr, betas=(0.5, 0.999),
                                               weight_decay=self.arch_weight_decay)
        if self._pending_state is not None:
            self.arch_optimizer.load_state_dict(self._pending_state)
            self._pending_state = None

    def confidence_factor(self, epoch: int, total_epochs: float) -> float:
        """``((epoch + 1) / E) ** power`` capped at 1, or 1 without CLR (BNAS-v2 eq. 9)."""
        if not self.confidence:
            return 1.0
        e = max(self.confidence_epochs or total_epochs, 1)
        return min(1.0, ((epoch + 1) / e) ** self.confidence_power)

    def _arch_batch(self, step: int, device):
        """Batch ``step mod len`` of architecture epoch ``step // len`` (deterministic, so resume is exact).

        Consecutive steps reuse one epoch iterator; a jump (resume) starts a new one there.
        """
        n = len(self.arch_loader)
        epoch, i = divmod(int(step), n)
        if self._arch_iter is None or self._arch_next != (epoch, i):
            self._arch_iter = self.arch_loader.epoch(epoch, start=i)
        x, y = next(self._arch_iter)
        self._arch_next = (epoch, i + 1) if i + 1 < n else (epoch + 1, 0)
        if i + 1 == n:
            self._arch_iter = None
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    def train_step(self, ctx, batch) -> dict:
        """One architecture step (see module doc), then the weight forward/backward.

        ``batch`` = ``(images [b, 3, H, W], targets [b])``. Returns ``loss`` (weights),
        ``arch_loss``/``arch_lr`` (when an architecture step ran) and the mean
        softmax weight on parameter-free operations per cell type
        (``pfree_conv``, ``pfree_enhance``), which rises when DARTS collapses.

        Raises:
            RuntimeError: no :attr:`arch_loader` was attached.
        """
        from ..supernets.darts import parameter_free_share
        images, targets = batch
        module = ctx.module
        if self.arch_optimizer is None:
            self.setup(module, None)
        out = {}
        if ctx.epoch >= self.arch_start_epoch:
            if self.arch_loader is None:
                raise RuntimeError("BNASv2.arch_loader is not set (train_loader() builds it)")
            total_epochs = ctx.total_steps / max(ctx.steps_per_epoch, 1)
            lr = self.arch_lr * self.confidence_factor(ctx.epoch, math.ceil(total_epochs))
            for g in self.arch_optimizer.param_groups:
                g["lr"] = lr
            xa, ya = self._arch_batch(ctx.step, ctx.device)
            self.arch_optimizer.zero_grad(set_to_none=True)
            arch_loss = self.criterion(ctx.model(xa), ya)  # fp32: alpha gradients are small
            arch_loss.backward()
            self.arch_optimizer.step()
            for p in module.parameters():  # the weights' gradients of this pass are not used
                p.grad = None
            out.update(arch_loss=arch_loss.detach(), arch_lr=lr)
        with ctx.autocast():
            loss = self.criterion(ctx.model(images), targets)
        ctx.backward(loss)
        with torch.no_grad():
            out["pfree_conv"] = parameter_free_share(module.cell_weights("conv")[0])
            out["pfree_enhance"] = parameter_free_share(module.cell_weights("enhance")[0])
        out["loss"] = loss.detach()
        return out

    def state_dict(self) -> dict:
        return {"arch_optimizer": None if self.arch_optimizer is None else self.arch_optimizer.state_dict()}

    def load_state_dict(self, d: dict) -> None:
        """Restore :meth:`state_dict` (ValueError for a state of another form)."""
        if d is not None and not isinstance(d, dict):
            raise ValueError(f"the algorithm state must be a dict, got {type(d).__name__}")
        st = (d or {}).get("arch_optimizer")
        if st is not None and not isinstance(st, dict):
            raise ValueError(f"algorithm 'arch_optimizer' must be an optimizer state dict, got {type(st).__name__}")
        if st is None:
            return
        if self.arch_optimizer is None:
            self._pending_state = st
        else:
            self.arch_optimizer.load_state_dict(st)
