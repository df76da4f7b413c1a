"""The training loop shared by supernet training and subnet retraining.

One :class:`Trainer` drives any *algorithm*
(:class:`~nasbench.algorithms.base.Algorithm`): an object with

* ``setup(module, train_cfg)``, called once before the optimizer is built (the
  algorithm builds its losses; e.g. BN-NAS sets ``requires_grad=False`` on all
  but some BN parameters; frozen parameters are left out of the optimizer),
* ``train_step(ctx: StepContext, batch) -> dict[str, float]`` doing its own
  forward(s) and backward(s) through ``ctx`` on whatever its loader yields
  (losses/metrics as python floats or 0-dim tensors; keys containing ``"loss"``
  are checked for NaN/inf at log time),
* ``state_dict()`` / ``load_state_dict(d)`` (e.g. its sampler state), and
* ``find_unused_parameters`` (class attribute, True when a step leaves some
  parameters without gradients, e.g. SPOS choice blocks, under DDP).

The trainer knows neither labels nor loss functions. It owns everything else:
device placement, DDP, the SGD optimizer and per-iteration warmup+cosine LR
(:mod:`nasbench.engine.optim`), mixed precision, grad clipping, EMA, logging
and exact resume (bit-identical on CPU) from ``out_dir/checkpoints/last.pth``.

Mixed precision (``train.amp``): ``bf16`` autocasts to bfloat16 on CPU and CUDA
(no loss scaling); ``fp16`` autocasts to float16 with a GradScaler on CUDA. A
Trainer built directly on a CPU with ``fp16`` falls back to ``bf16`` with a warning;
the tools refuse that setting before they write anything
(:func:`nasbench.pipeline.check_amp`). bf16 on a GPU without bf16 support falls back to fp16.
"""

from __future__ import annotations

import inspect
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

import nasbench
from nasbench.engine import dist as D
from nasbench.engine.checkpoint import (RESUME_KEYS, checkpoint_error, get_rng_state, load_checkpoint,
                                        save_checkpoint, set_rng_state)
from nasbench.engine.context import StepContext
from nasbench.engine.logger import RunLogger
from nasbench.engine.optim import (train_value, to_builtins, train_section, build_optimizer, build_scheduler, resolve_amp,
                                   set_deterministic, total_steps)
from nasbench.errors import CheckpointError, ConfigError

__all__ = ["StepContext", "HookBase", "Trainer", "build_optimizer", "build_scheduler", "resolve_amp",
           "set_deterministic", "total_steps"]


class HookBase:
    """Override any of these to run code around the loop (detectron2-style).

    ``trainer.step`` / ``trainer.epoch`` / ``trainer.batch_idx`` reflect progress
    *after* the step (``epoch`` has already advanced when ``after_epoch`` runs).
    Hooks run on every rank; guard file writes with ``trainer.dist.is_main``.
    """

    def before_train(self, trainer: "Trainer") -> None: ...
    def after_step(self, trainer: "Trainer", metrics: dict) -> None: ...
    def after_epoch(self, trainer: "Trainer") -> None: ...
    def after_train(self, trainer: "Trainer") -> None: ...


class Trainer:
    """Epoch/batch loop with DDP, AMP, clipping, EMA, logging and exact resume.

    Args:
        model: the network (supernet or standalone); moved to ``dist.device``.
        algorithm: an :class:`~nasbench.algorithms.base.Algorithm` (see module doc).
        loader: ``len(loader)`` batches per epoch; ``loader.epoch(e, start=i)``
            yields CPU batches (a tensor, or tuples/lists/dicts of tensors, whose
            first tensor's dim 0 is the number of images) from batch ``i``,
            deterministic per (epoch, batch), already sharded by rank.
        cfg: the config (or its ``train`` section); absent keys take the ``train``
            defaults of ``config_defaults.yaml``.
        out_dir: run folder; checkpoints go to ``out_dir/checkpoints/last.pth``.
        dist: :class:`~nasbench.engine.dist.DistInfo` (default: the current process
            group, or a single process on CUDA if available else CPU).
        logger: a :class:`RunLogger` (default: one on ``out_dir``, closed by ``fit``).
        extra_state: stored in every checkpoint under ``extra_state`` (e.g. the
            resolved config; mappings are converted to plain dicts).
        optimizer: optional prebuilt optimizer (default :func:`build_optimizer`).
        hooks: optional list of :class:`HookBase`.

    Attributes after construction: ``module`` (unwrapped), ``model`` (DDP or module),
    ``optimizer``, ``scheduler``, ``scaler``, ``ema`` (timm ModelEmaV3 or None),
    ``ctx``, ``steps_per_epoch``, ``total_steps``, ``step``, ``epoch``, ``batch_idx``.
    """

    CKPT_NAME = "last.pth"

    def __init__(self, model: nn.Module, algorithm: Any, loader: Any, cfg: Any,
                 out_dir: str | os.PathLike, dist: Optional[D.DistInfo] = None,
                 logger: Optional[RunLogger] = None, extra_state: Any = None,
                 optimizer: Optional[torch.optim.Optimizer] = None,
                 hooks: Optional[list] = None):
        self.cfg = train_section(cfg)
        self.algorithm = algorithm
        self.loader = loader
        self.out_dir = Path(out_dir)
        self.dist = dist if dist is not None else D.get_dist_info()
        self.device = self.dist.device
        self.extra_state = to_builtins(extra_state)
        self.hooks = list(hooks or [])
        self.steps_per_epoch = len(loader)
        if self.steps_per_epoch <= 0:
            raise ConfigError("Trainer: the training loader has no batches")
        self.total_steps = total_steps(self.cfg, self.steps_per_epoch)
        self._own_logger = logger is None
        self.logger = logger if logger is not None else RunLogger(self.out_dir, rank=self.dist.rank)

        module = model.to(self.device)
        self.channels_last = bool(train_value(self.cfg, "channels_last"))
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        if train_value(self.cfg, "sync_bn") and self.dist.distributed:
            if self.device.type == "cuda":
                module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
            else:
                self.logger.warning("train.sync_bn ignored: SyncBatchNorm needs CUDA")
        self.module = module
        algorithm.setup(module, self.cfg)  # its losses; e.g. BN-NAS freezes all but some BNs
        self.amp_dtype = resolve_amp(train_value(self.cfg, "amp"), self.device)
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.amp_dtype == torch.float16 and self.device.type == "cuda")
        # a step that leaves some parameters without gradients (SPOS's inactive candidates)
        # needs DDP to look for them and the unfused SGD (see build_optimizer)
        partial_grads = bool(algorithm.find_unused_parameters)
        self.optimizer = optimizer if optimizer is not None else build_optimizer(
            module, self.cfg, fused=not partial_grads)
        self.scheduler = build_scheduler(self.optimizer, self.cfg, self.steps_per_epoch)
        ema = train_value(self.cfg, "ema")
        self.ema = None
        if ema:
            from timm.utils import ModelEmaV3
            self.ema = ModelEmaV3(module, decay=float(ema))
        self.model = self._wrap_ddp(module, partial_grads) if self.dist.distributed else module
        self.ctx = StepContext(
            model=self.model, module=module, device=self.device,
            amp_dtype=self.amp_dtype, scaler=self.scaler, rank=self.dist.rank,
            world_size=self.dist.world_size, total_steps=self.total_steps, steps_per_epoch=self.steps_per_epoch,
            optimizer=self.optimizer)
        self.drop_path = float(train_value(self.cfg, "drop_path") or 0.0)
        if self.drop_path and not hasattr(module, "drop_path_prob"):
            raise ConfigError(f"drop_path={self.drop_path}: {type(module).__name__} has no drop_path_prob "
                              "(only DARTS-cell networks use drop path)")
        self.clip_grad = train_value(self.cfg, "clip_grad")
        self.clip_mode = str(train_value(self.cfg, "clip_mode") or "norm")
        if self.clip_mode not in ("norm", "value"):
            raise ConfigError(f"train.clip_mode must be 'norm' or 'value', got {self.clip_mode!r}")
        self.log_interval = max(1, int(train_value(self.cfg, "log_interval") or 1))
        self.ckpt_interval = int(train_value(self.cfg, "ckpt_interval") or 0)
        self.step = 0
        self.epoch = 0
        self.batch_idx = 0
        self._last_saved = -1

    def _wrap_ddp(self, module: nn.Module, find_unused: bool) -> DistributedDataParallel:
        """DDP around ``module``; buffers (BN statistics) are synced once at construction,
        not every forward."""
        no_buf_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in
                       inspect.signature(DistributedDataParallel.__init__).parameters
                       else {"broadcast_buffers": False})
        return DistributedDataParallel(
            module, device_ids=[self.device.index] if self.device.type == "cuda" else None,
            find_unused_parameters=find_unused, **no_buf_sync)

    # ----------------------------------------------------------------- checkpointing
    @property
    def ckpt_path(self) -> Path:
        """``out_dir/checkpoints/last.pth``."""
        return self.out_dir / "checkpoints" / self.CKPT_NAME

    def state_dict(self) -> dict:
        """Everything needed to continue exactly (collective under DDP: call on all ranks)."""
        rng = D.all_gather_object(get_rng_state())
        return {
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "algorithm": self.algorithm.state_dict(),  # rank 0's
            "algorithm_ranks": D.all_gather_object(self.algorithm.state_dict())
            if self.dist.distributed else None,
            "step": self.step, "epoch": self.epoch, "batch_idx": self.batch_idx,
            "total_steps": self.total_steps, "steps_per_epoch": self.steps_per_epoch,
            "world_size": self.dist.world_size,
            "rng": rng,  # one entry per rank
            "extra_state": self.extra_state,
            "nasbench_version": nasbench.__version__,
        }

    def save(self) -> None:
        """Write ``last.pth`` (all ranks must call; rank 0 writes atomically)."""
        state = self.state_dict()
        save_checkpoint(state, self.ckpt_path)
        self._last_saved = self.step

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (model, optimizer, ..., counters, this rank's RNG).

        Raises:
            CheckpointError: an entry that does not fit this run (naming the entry,
                ``self.ckpt_path`` and the checkpoint format).
        """
        entry = "model"
        try:
            self.module.load_state_dict(state["model"])
            entry = "optimizer"
            self.optimizer.load_state_dict(state["optimizer"])
            entry = "scheduler"
            self.scheduler.load_state_dict(state["scheduler"])
            entry = "scaler"
            if state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            entry = "ema"
            if self.ema is not None:
                if state.get("ema") is None:
                    self.logger.warning("checkpoint has no EMA weights; EMA restarts from the model")
                    self.ema.module.load_state_dict(self.module.state_dict())
                else:
                    self.ema.load_state_dict(state["ema"])
            entry = "algorithm"
            per_rank = state.get("algorithm_ranks")
            own = (per_rank[self.dist.rank] if per_rank and len(per_rank) == self.dist.world_size
                   else state["algorithm"])
            self.algorithm.load_state_dict(own)
            entry = "step"
            self.step, self.epoch, self.batch_idx = state["step"], state["epoch"], state["batch_idx"]
            entry = "rng"
            rng = state.get("rng") or []
            if len(rng) == self.dist.world_size:
                set_rng_state(rng[self.dist.rank])
            elif rng:
                set_rng_state(rng[0])
        except CheckpointError:
            raise
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError, OverflowError) as e:
            raise checkpoint_error(
                self.ckpt_path, state,
                f"entry {entry!r} does not match this run ({type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}); use the same config, or start "
                "a new --out folder") from e
        if state.get("total_steps") != self.total_steps:
            self.logger.warning("config now gives %d steps, the checkpoint's run %s: training "
                                "runs to %d steps but keeps the checkpoint's LR schedule",
                                self.total_steps, state.get("total_steps"), self.total_steps)
        if state.get("steps_per_epoch") != self.steps_per_epoch:
            self.logger.warning("resuming with %s batches/epoch (checkpoint had %s): batch order "
                                "differs from the interrupted run", self.steps_per_epoch,
                                state.get("steps_per_epoch"))
        rng = state.get("rng") or []
        if len(rng) != self.dist.world_size:
            self.logger.warning("checkpoint was written by %d processes, now %d: RNG streams "
                                "are reseeded from rank 0's", len(rng), self.dist.world_size)

    def resume(self, missing_ok: bool = False, state: dict | None = None) -> bool:
        """Load ``last.pth`` (or ``state``, that file as already loaded) into this trainer.
        Returns False if absent and ``missing_ok``.

        Raises:
            CheckpointError: missing (unless ``missing_ok``), corrupt or incompatible file.
        """
        if state is None and missing_ok and not self.ckpt_path.is_file():
            return False
        if state is None:
            state = load_checkpoint(self.ckpt_path, map_location="cpu", require=RESUME_KEYS)
        self.load_state_dict(state)
        self._last_saved = self.step
        self.logger.info("resumed from %s at step %d (epoch %d, batch %d)",
                         self.ckpt_path, self.step, self.epoch, self.batch_idx)
        return True

    # ----------------------------------------------------------------- the loop
    def prepare_batch(self, batch):
        """A loader's CPU ``batch`` on the run's device; with ``train.channels_last`` its 4-d tensors
        in NHWC layout (faster CPU convolutions, perf/cpu_fast_path.py; the function is unchanged)."""
        return _to_device(batch, self.device, self.channels_last)

    def run_step(self, batch) -> dict:
        """One optimizer step: algorithm forward/backward on ``batch``, clip, step, LR, EMA.

        An algorithm with ``owns_optimizer`` (see :class:`~nasbench.algorithms.base.Algorithm`)
        zeroes, clips and steps its own optimizer inside ``train_step``; the trainer's SGD,
        LR schedule and EMA are then left untouched."""
        self.ctx.step, self.ctx.epoch = self.step, self.epoch
        if getattr(self.algorithm, "owns_optimizer", False):
            return self.algorithm.train_step(self.ctx, batch)
        self.optimizer.zero_grad(set_to_none=True)
        metrics = self.algorithm.train_step(self.ctx, batch)
        if self.clip_grad:
            self.scaler.unscale_(self.optimizer)
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            if self.clip_mode == "value":  # BN-NAS clips every gradient element to [-v, v]
                torch.nn.utils.clip_grad_value_(params, float(self.clip_grad))
            else:
                gnorm = torch.nn.utils.clip_grad_norm_(params, float(self.clip_grad))
                metrics = {**metrics, "grad_norm": gnorm.detach()}
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step_update(num_updates=self.step + 1)
        if self.ema is not None:
            self.ema.update(self.module, step=self.step + 1)
        return metrics

    def fit(self, resume: bool | str | dict = False, stop_after: Optional[int] = None) -> "Trainer":
        """Train until ``total_steps`` optimizer steps are done.

        Args:
            resume: True -> continue from ``out_dir/checkpoints/last.pth`` (raises
                CheckpointError if missing/corrupt); ``'auto'`` -> resume if it
                exists, else start fresh; False -> start fresh (overwrites it); a dict ->
                continue from this state, already read with :func:`load_checkpoint`
                (a stage checks the checkpoint before it writes anything).
            stop_after: stop (with a checkpoint) once this many global steps are
                done, as a preempted job would; a later ``fit(resume=True)``
                continues to the same result as an uninterrupted run.

        Checkpoints are written every ``ckpt_interval`` steps, at each epoch end and
        at the end. Call once per Trainer (a logger the Trainer created is closed at
        the end). Returns self.
        """
        if resume:
            try:
                self.resume(missing_ok=(resume == "auto"), state=resume if isinstance(resume, dict) else None)
            except BaseException:
                if self._own_logger:
                    self.logger.close()
                raise
        if self.step == 0:
            self.logger.info("training %d steps (%d epochs x %d batches, world size %d) on %s, amp=%s",
                             self.total_steps, math.ceil(self.total_steps / self.steps_per_epoch),
                             self.steps_per_epoch, self.dist.world_size, self.device,
                             self.amp_dtype if self.amp_dtype else "none")
        self._call_hooks("before_train")
        self.module.train()
        end = self.total_steps if stop_after is None else min(self.total_steps, int(stop_after))
        self._pbar = None
        if self.dist.is_main:
            from tqdm import tqdm
            self._pbar = tqdm(total=self.total_steps, initial=self.step, dynamic_ncols=True,
                              disable=None, desc="train")
        self._acc, self._t_last, self._n_img = {}, time.perf_counter(), 0
        try:
            while self.step < end:
                self._run_epoch(end)
            self._flush_log()
            if self._last_saved != self.step:
                self.save()
            if self.step >= self.total_steps:
                self._call_hooks("after_train")
                self.logger.info("training done: %d steps, checkpoint %s", self.step, self.ckpt_path)
            else:
                self.logger.info("stopped at step %d/%d; resume with fit(resume=True)",
                                 self.step, self.total_steps)
        finally:
            if self._pbar is not None:
                self._pbar.close()
            if self._own_logger:
                self.logger.close()
        return self

    def _call_hooks(self, name: str, *args) -> None:
        for h in self.hooks:
            getattr(h, name)(self, *args)

    def _run_epoch(self, end: int) -> None:
        """Steps of the current epoch from ``batch_idx`` until its end or step ``end``."""
        epoch, start = self.epoch, self.batch_idx
        if self.drop_path:  # DARTS retraining: drop_path * epoch / epochs, set per epoch
            self.module.drop_path_prob = self.drop_path * epoch * self.steps_per_epoch / self.total_steps
        ran = 0
        for i, batch in enumerate(self.loader.epoch(epoch, start=start), start):
            batch = self.prepare_batch(batch)
            metrics = self.run_step(batch)
            ran += 1
            self._n_img += _num_images(batch)
            for k, v in metrics.items():
                self._acc.setdefault(k, []).append(v)
            self.step += 1
            self.batch_idx = i + 1
            epoch_end = self.batch_idx >= self.steps_per_epoch
            if epoch_end:
                self.epoch, self.batch_idx = epoch + 1, 0
            self._after_step(metrics, epoch_end, end)
            if epoch_end or self.step >= end:
                return
        if self.step < end:
            if ran == 0:
                raise RuntimeError(f"loader.epoch({epoch}, start={start}) yielded no "
                                   f"batches but len(loader)={self.steps_per_epoch}")
            # loader yielded fewer batches than len(loader): the epoch is over
            self.epoch, self.batch_idx = epoch + 1, 0
            self._call_hooks("after_epoch")
            self.save()

    def _after_step(self, metrics: dict, epoch_end: bool, end: int) -> None:
        """Progress bar, logging, hooks and checkpoints after one step."""
        if self._pbar is not None:
            self._pbar.update(1)
        if self.step % self.log_interval == 0 or self.step == end:
            self._flush_log()
        self._call_hooks("after_step", metrics)
        if epoch_end:
            self._call_hooks("after_epoch")
        if epoch_end or (self.ckpt_interval and self.step % self.ckpt_interval == 0):
            self.save()

    def _flush_log(self) -> None:
        if self._acc:
            dt = time.perf_counter() - self._t_last
            self._log(self._acc, self._n_img * self.dist.world_size / max(dt, 1e-9), self._pbar)
        self._acc, self._t_last, self._n_img = {}, time.perf_counter(), 0

    def _log(self, acc: dict, images_per_s: float, pbar) -> None:
        keys = sorted(acc)
        vals = torch.tensor([sum(float(v) for v in acc[k]) / len(acc[k]) for k in keys],
                            dtype=torch.float64)
        if D.is_dist():  # mean over ranks (NCCL needs the tensor on the GPU)
            on_gpu = torch.distributed.get_backend() == "nccl"
            vals = D.all_reduce_mean(vals.to(self.device) if on_gpu else vals).cpu()
        metrics = dict(zip(keys, vals.tolist()))
        for k, v in metrics.items():
            if "loss" in k and not math.isfinite(v):
                raise FloatingPointError(f"{k} is {v} at step {self.step} (epoch {self.epoch}); "
                                         "lower train.lr, enable train.clip_grad or check the data")
        metrics["lr"] = self.optimizer.param_groups[0]["lr"]
        metrics["images_per_s"] = images_per_s
        metrics["epoch"] = self.epoch
        self.logger.log(self.step, metrics, prefix="train")
        if pbar is not None:
            pbar.set_postfix({k: f"{metrics[k]:.4g}" for k in keys[:3] + ["lr"]}, refresh=False)
        self.logger.info("step %d/%d epoch %d  %s  lr %.4g  %.0f img/s", self.step,
                         self.total_steps, self.epoch,
                         "  ".join(f"{k} {metrics[k]:.4f}" for k in keys),
                         metrics["lr"], images_per_s)


def _to_device(batch, device, channels_last: bool = False):
    """``batch`` (a tensor or nested tuples/lists/dicts of tensors) moved to ``device``;
    with ``channels_last`` its 4-d tensors (image batches) in NHWC memory layout."""
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        return batch.contiguous(memory_format=torch.channels_last) if channels_last and batch.dim() == 4 else batch
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device, channels_last) for b in batch)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device, channels_last) for k, v in batch.items()}
    return batch


def _num_images(batch) -> int:
    """Dim 0 of the first tensor of ``batch`` (the throughput counter's images)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    items = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (list, tuple)) else ()
    for b in items:
        n = _num_images(b)
        if n:
            return n
    return 0
