"""The step context: what an algorithm's ``train_step(ctx, batch)`` may use.

Created by the :class:`~nasbench.engine.trainer.Trainer`, one per run; it
carries the (DDP-wrapped) model, mixed precision and the run's position, and
knows nothing about labels or losses (those belong to the algorithm).
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["StepContext"]


@dataclass
class StepContext:
    """What an algorithm's ``train_step`` may use. Created by the Trainer; one per run.

    Attributes:
        model: call this for forward passes (the DDP wrapper when distributed,
            else the module itself).
        module: the unwrapped ``nn.Module`` (for ``set_active(...)``, attributes).
        device: device of model and batch.
        amp_dtype: autocast dtype (``torch.bfloat16``/``torch.float16``) or None.
        scaler: the GradScaler (enabled only for fp16 on CUDA).
        step: global step being run (0-based: number of optimizer steps done so far).
        epoch: epoch of the current batch.
        total_steps, steps_per_epoch: length of the run, optimizer steps (for
            algorithms with their own epoch-dependent schedules).
        rank, world_size: distributed position (0, 1 in a single process).
        optimizer: the trainer's weight optimizer (read-only for algorithms: e.g.
            second-order DARTS looks ahead one SGD step with its lr, momentum
            buffers and weight decay); None outside a Trainer.

    Multi-pass steps under DDP (e.g. BCNet's two paths): run the forward AND
    backward of every pass but the last inside ``with ctx.no_sync():`` -- DDP
    decides at forward time whether a backward all-reduces, so wrapping only the
    backward is not enough. The last pass runs outside it and all-reduces the
    summed gradients once::

        with ctx.no_sync():
            with ctx.autocast():
                loss1 = criterion(ctx.model(x), y)
            ctx.backward(loss1, last=False)
        with ctx.autocast():
            loss2 = criterion(ctx.model(x), y)
        ctx.backward(loss2)                     # last=True (default)

    Gradients are still correct when ``no_sync`` is omitted (each pass is then
    all-reduced; a one-time warning points at the extra communication).
    """

    model: nn.Module
    module: nn.Module
    device: torch.device = torch.device("cpu")
    amp_dtype: Optional[torch.dtype] = None
    scaler: Optional[torch.amp.GradScaler] = None
    step: int = 0
    epoch: int = 0
    total_steps: int = 0
    steps_per_epoch: int = 0
    rank: int = 0
    world_size: int = 1
    optimizer: Optional[torch.optim.Optimizer] = None
    _in_no_sync: bool = field(default=False, repr=False)
    _warned: bool = field(default=False, repr=False)

    def autocast(self):
        """Context manager: ``torch.autocast`` with the run's AMP dtype, or a no-op."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    @contextlib.contextmanager
    def no_sync(self):
        """Context manager: skip DDP's gradient all-reduce for the forward+backward inside.

        Gradients accumulate locally; the next forward+backward outside the block
        all-reduces the accumulated sum. No-op without DDP.
        """
        if not isinstance(self.model, DistributedDataParallel) or self._in_no_sync:
            yield
            return
        self._in_no_sync = True
        try:
            with self.model.no_sync():
                yield
        finally:
            self._in_no_sync = False

    def backward(self, loss: torch.Tensor, last: bool = True) -> None:
        """Backpropagate ``loss`` (scaled by the GradScaler under fp16).

        Args:
            loss: scalar tensor. Gradients accumulate over calls within a step.
            last: False for every backward of a step but the final one. Under DDP
                such passes should run inside :meth:`no_sync` (see class doc).
        """
        if (not last and self.world_size > 1 and not self._in_no_sync and not self._warned):
            self._warned = True
            warnings.warn("ctx.backward(last=False) outside ctx.no_sync(): gradients are "
                          "correct but all-reduced once per pass; wrap the forward and "
                          "backward of the non-final passes in ctx.no_sync()", stacklevel=2)
        if self.scaler is not None and self.scaler.is_enabled():
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
