"""The training loop shared by supernet training and subnet retraining.

One :class:`Trainer` drives any *algorithm*: an object with

* ``train_step(ctx: StepContext, images, targets) -> dict[str, float]`` doing its
  own forward(s) and backward(s) through ``ctx`` (losses/metrics as python floats
  or 0-dim tensors; keys containing ``"loss"`` are checked for NaN/inf at log time),
* ``state_dict()`` / ``load_state_dict(d)`` (e.g. its sampler state), and optionally
* ``find_unused_parameters = True`` (class attribute) when a step leaves some
  parameters without gradients (e.g. SPOS choice blocks) under DDP, and
* ``prepare_model(module)``, called once before the optimizer is built (e.g.
  BN-NAS sets ``requires_grad=False`` on all but some BN parameters; frozen
  parameters are left out of the optimizer).

The trainer owns everything else: device placement, DDP, the SGD optimizer and
per-iteration warmup+cosine LR, mixed precision, grad clipping, EMA, logging and
exact resume (bit-identical on CPU) from ``out_dir/checkpoints/last.pth``.

Mixed precision (``train.amp``): ``bf16`` autocasts to bfloat16 on CPU and CUDA
(no loss scaling); ``fp16`` autocasts to float16 with a GradScaler on CUDA. A
Trainer built directly on a CPU with ``fp16`` falls back to ``bf16`` with a warning;
the tools refuse that setting before they write anything
(:func:`nasbench.pipeline.check_amp`). bf16 on a GPU without bf16 support falls back to fp16.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import random
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np
import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

import nasbench
from nasbench.engine import dist as D
from nasbench.engine.checkpoint import get_rng_state, load_checkpoint, save_checkpoint, set_rng_state
from nasbench.engine.logger import RunLogger
from nasbench.errors import CheckpointError, ConfigError

__all__ = [
    "StepContext", "StandardAlgorithm", "HookBase", "Trainer", "build_optimizer",
    "build_scheduler", "evaluate_accuracy", "set_deterministic", "resolve_amp", "TRAIN_DEFAULTS",
]

#: Values used when a ``train`` key is absent (mirrors ``config_defaults.yaml``).
TRAIN_DEFAULTS = dict(
    epochs=100, max_steps=None, lr=0.1, min_lr=0.0, warmup_epochs=0, warmup_lr=0.0,
    momentum=0.9, nesterov=True, weight_decay=5e-4, no_wd_bn=True, label_smoothing=0.0,
    clip_grad=None, clip_mode="norm", schedule="cosine", ema=None, amp="none", sync_bn=False,
    log_interval=50, ckpt_interval=1000, drop_path=0.0,
)


# --------------------------------------------------------------------------- config access
def _train_cfg(cfg: Any) -> Any:
    """Accept the whole config (with a ``train`` section) or the ``train`` section itself."""
    if cfg is None:
        return {}
    if isinstance(cfg, Mapping):
        return cfg["train"] if "train" in cfg else cfg
    return getattr(cfg, "train", cfg)


def _get(cfg: Any, key: str) -> Any:
    if isinstance(cfg, Mapping):
        return cfg.get(key, TRAIN_DEFAULTS.get(key))
    return getattr(cfg, key, TRAIN_DEFAULTS.get(key))


def _plain(obj: Any) -> Any:
    """Recursively turn mappings/sequences (e.g. an attribute-dict config) into builtins."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor)):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    return obj


# --------------------------------------------------------------------------- determinism / amp
def set_deterministic(seed: int, deterministic: bool = True) -> None:
    """Seed python, numpy and torch (CPU + all CUDA devices) with ``seed``.

    With ``deterministic=True`` also calls ``torch.use_deterministic_algorithms(True,
    warn_only=True)``, disables cuDNN benchmarking and sets ``CUBLAS_WORKSPACE_CONFIG``
    (if unset) so CUDA matmuls are reproducible.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def resolve_amp(amp: Optional[str], device: torch.device) -> Optional[torch.dtype]:
    """Autocast dtype for ``amp in {'none', 'bf16', 'fp16'}`` on ``device`` (None = fp32).

    fp16 on CPU falls back to bf16 with a warning; bf16 on a CUDA device without
    bf16 support falls back to fp16 with a warning.

    Raises:
        ConfigError: unknown ``amp`` value.
    """
    amp = "none" if amp in (None, False) else str(amp).lower()
    if amp in ("none", "fp32", "no"):
        return None
    if amp not in ("bf16", "fp16"):
        raise ConfigError(f"train.amp: unknown value '{amp}'; expected none, bf16 or fp16")
    device = torch.device(device)
    if amp == "fp16" and device.type != "cuda":
        warnings.warn("train.amp=fp16 needs CUDA (GradScaler); using bf16 autocast on "
                      f"{device.type} instead", stacklevel=2)
        return torch.bfloat16
    if amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        warnings.warn("this GPU does not support bf16; using fp16 + GradScaler", stacklevel=2)
        return torch.float16
    return torch.bfloat16 if amp == "bf16" else torch.float16


# --------------------------------------------------------------------------- step context
@dataclass
class StepContext:
    """What an algorithm's ``train_step`` may use. Created by the Trainer; one per run.

    Attributes:
        model: call this for forward passes (the DDP wrapper when distributed,
            else the module itself).
        module: the unwrapped ``nn.Module`` (for ``set_active(...)``, attributes).
        criterion: ``criterion(logits [b, C], targets int64 [b]) -> scalar`` mean
            cross-entropy with the configured label smoothing.
        device: device of model and batch.
        amp_dtype: autocast dtype (``torch.bfloat16``/``torch.float16``) or None.
        scaler: the GradScaler (enabled only for fp16 on CUDA).
        step: global step being run (0-based: number of optimizer steps done so far).
        epoch: epoch of the current batch.
        total_steps, steps_per_epoch: length of the run, optimizer steps (for
            algorithms with their own epoch-dependent schedules).
        rank, world_size: distributed position (0, 1 in a single process).

    Multi-pass steps under DDP (e.g. BCNet's two paths): run the forward AND
    backward of every pass but the last inside ``with ctx.no_sync():`` -- DDP
    decides at forward time whether a backward all-reduces, so wrapping only the
    backward is not enough. The last pass runs outside it and all-reduces the
    summed gradients once::

        with ctx.no_sync():
            with ctx.autocast():
                loss1 = ctx.criterion(ctx.model(x), y)
            ctx.backward(loss1, last=False)
        with ctx.autocast():
            loss2 = ctx.criterion(ctx.model(x), y)
        ctx.backward(loss2)                     # last=True (default)

    Gradients are still correct when ``no_sync`` is omitted (each pass is then
    all-reduced; a one-time warning points at the extra communication).
    """

    model: nn.Module
    module: nn.Module
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    device: torch.device = torch.device("cpu")
    amp_dtype: Optional[torch.dtype] = None
    scaler: Optional[torch.amp.GradScaler] = None
    step: int = 0
    epoch: int = 0
    total_steps: int = 0
    steps_per_epoch: int = 0
    rank: int = 0
    world_size: int = 1
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


class StandardAlgorithm:
    """Plain supervised training of a fixed network: one forward, criterion, backward.

    Used for standalone retraining. Stateless (empty ``state_dict``).
    """

    def train_step(self, ctx: StepContext, images: torch.Tensor, targets: torch.Tensor) -> dict:
        """images float [b, 3, H, W], targets int64 [b] -> ``{'loss': 0-dim tensor, 'top1': %}``."""
        with ctx.autocast():
            logits = ctx.model(images)
            loss = ctx.criterion(logits, targets)
        ctx.backward(loss)
        with torch.no_grad():
            top1 = (logits.argmax(1) == targets).float().mean() * 100.0
        return {"loss": loss.detach(), "top1": top1}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, d: dict) -> None:
        pass


# --------------------------------------------------------------------------- optimizer / schedule
def build_optimizer(model: nn.Module, cfg: Any, fused: bool = True) -> torch.optim.SGD:
    """SGD over ``model``'s trainable parameters.

    Reads ``lr, momentum, nesterov, weight_decay, no_wd_bn`` from ``cfg`` (the
    ``train`` section or a config holding one). With ``no_wd_bn`` every parameter
    with ``ndim <= 1`` (BatchNorm/LayerNorm weights and biases, all biases) goes
    to a second group with ``weight_decay=0``. Parameters with ``requires_grad=False``
    are left out, and so are a DARTS supernet's ``model.arch_parameters()``
    (their own optimizer belongs to the algorithm). ``fused=False`` keeps the per-parameter implementation, needed
    when a step leaves some parameters without a gradient (SPOS: inactive
    candidates): torch's fused SGD rejects a mix of new and existing momentum buffers.
    """
    c = _train_cfg(cfg)
    wd = float(_get(c, "weight_decay") or 0.0)
    arch = {id(p) for p in model.arch_parameters()} if hasattr(model, "arch_parameters") else set()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad and id(p) not in arch]
    if not params:
        raise ConfigError("build_optimizer: the model has no trainable parameters")
    if _get(c, "no_wd_bn") and wd > 0:
        decay = [p for _, p in params if p.ndim > 1]
        no_decay = [p for _, p in params if p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": wd},
                  {"params": no_decay, "weight_decay": 0.0}]
        groups = [g for g in groups if g["params"]]
    else:
        groups = [{"params": [p for _, p in params], "weight_decay": wd}]
    momentum = float(_get(c, "momentum") or 0.0)
    # fused: one multithreaded kernel per parameter. A supernet's sliced weights get
    # full-size (mostly zero) gradients, so the optimizer touches every supernet weight
    # each step; the default per-parameter loop made that 40 ms of a 360 ms ResNet step
    # on 2 CPU cores, fused cuts it to about 14 ms (perf/supernet_step_overhead.py).
    fused = fused and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for _, p in params)
    return torch.optim.SGD(groups, lr=float(_get(c, "lr")), momentum=momentum,
                           nesterov=bool(_get(c, "nesterov")) and momentum > 0, fused=fused or None)


def total_steps(cfg: Any, steps_per_epoch: int) -> int:
    """``min(epochs * steps_per_epoch, max_steps)`` (max_steps None/<=0 means no cap)."""
    c = _train_cfg(cfg)
    total = int(math.ceil(float(_get(c, "epochs")) * steps_per_epoch))
    max_steps = _get(c, "max_steps")
    if max_steps is not None and int(max_steps) > 0:
        total = min(total, int(max_steps))
    if total <= 0:
        raise ConfigError(f"train: epochs={_get(c, 'epochs')} x {steps_per_epoch} steps/epoch "
                          f"and max_steps={max_steps} give no training steps")
    return total


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: Any, steps_per_epoch: int):
    """Per-iteration schedule: linear warmup then cosine (timm ``CosineLRScheduler``),
    or with ``schedule: linear`` a linear decay to ``min_lr`` (timm ``PolyLRScheduler``, power 1).

    LR at update ``t`` (``t`` optimizer steps done; call ``sched.step_update(t)``
    after each step): ``warmup_lr + t * (lr - warmup_lr) / W`` for ``t < W``, then
    ``min_lr + (lr - min_lr) * (1 + cos(pi * (t - W) / (T - W))) / 2``, reaching
    ``min_lr`` at ``t = T``. ``W = round(warmup_epochs * steps_per_epoch)`` (capped at
    ``T - 1``), ``T = min(epochs * steps_per_epoch, max_steps)``. The returned
    object has ``state_dict()``/``load_state_dict()``.
    """
    from timm.scheduler import CosineLRScheduler, PolyLRScheduler

    c = _train_cfg(cfg)
    total = total_steps(c, steps_per_epoch)
    warmup = int(round(float(_get(c, "warmup_epochs") or 0) * steps_per_epoch))
    warmup = max(0, min(warmup, total - 1))
    kind = str(_get(c, "schedule") or "cosine")
    if kind == "linear":  # BN-NAS / SPOS: lr decays linearly per iteration to min_lr
        return PolyLRScheduler(
            optimizer, t_initial=max(1, total - warmup), power=1.0, lr_min=float(_get(c, "min_lr") or 0.0),
            warmup_t=warmup, warmup_lr_init=float(_get(c, "warmup_lr") or 0.0),
            warmup_prefix=True, t_in_epochs=False, cycle_limit=1)
    if kind != "cosine":
        raise ConfigError(f"train.schedule must be 'cosine' or 'linear', got {kind!r}")
    return CosineLRScheduler(
        optimizer, t_initial=max(1, total - warmup), lr_min=float(_get(c, "min_lr") or 0.0),
        warmup_t=warmup, warmup_lr_init=float(_get(c, "warmup_lr") or 0.0),
        warmup_prefix=True, t_in_epochs=False, cycle_limit=1)


# --------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_accuracy(model: nn.Module, loader: Iterable, device: torch.device | str,
                      amp: str = "none") -> dict:
    """Top-1 accuracy (percent) and mean cross-entropy of ``model`` over ``loader``.

    ``loader`` is either a nasbench loader (``loader.epoch(0)`` is iterated) or any
    iterable of ``(images [b,3,H,W], targets int64 [b])``. Sums are all-reduced
    over ranks when distributed, so each rank must see its own shard. The model is
    put in eval mode and its previous mode restored.

    Returns:
        ``{'top1': float %, 'loss': float, 'n': int images}``.
    """
    device = torch.device(device)
    dtype = resolve_amp(amp, device)
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # correct, loss sum, count
    batches = loader.epoch(0) if hasattr(loader, "epoch") else loader
    try:
        for images, targets in batches:
            images = images.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            ctx = (torch.autocast(device_type=device.type, dtype=dtype) if dtype
                   else contextlib.nullcontext())
            with ctx:
                logits = model(images)
            logits = logits.float()
            sums[0] += (logits.argmax(1) == targets).sum()
            sums[1] += nn.functional.cross_entropy(logits, targets, reduction="sum")
            sums[2] += targets.numel()
    finally:
        model.train(was_training)
    sums = D.all_reduce_sum(sums)
    n = max(sums[2].item(), 1.0)
    return {"top1": 100.0 * sums[0].item() / n, "loss": sums[1].item() / n, "n": int(sums[2].item())}


# --------------------------------------------------------------------------- trainer
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
        algorithm: see module doc (``train_step``, ``state_dict``, ``load_state_dict``).
        loader: ``len(loader)`` batches per epoch; ``loader.epoch(e, start=i)``
            yields CPU ``(images float32 [b,3,H,W], targets int64 [b])`` from batch
            ``i``, deterministic per (epoch, batch), already sharded by rank.
        cfg: the config (or its ``train`` section); keys in :data:`TRAIN_DEFAULTS`.
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
        self.cfg = _train_cfg(cfg)
        self.algorithm = algorithm
        self.loader = loader
        self.out_dir = Path(out_dir)
        self.dist = dist if dist is not None else D.get_dist_info()
        self.device = self.dist.device
        self.extra_state = _plain(extra_state)
        self.hooks = list(hooks or [])
        self.steps_per_epoch = len(loader)
        if self.steps_per_epoch <= 0:
            raise ConfigError("Trainer: the training loader has no batches")
        self.total_steps = total_steps(self.cfg, self.steps_per_epoch)
        self._own_logger = logger is None
        self.logger = logger if logger is not None else RunLogger(self.out_dir, rank=self.dist.rank)

        module = model.to(self.device)
        if _get(self.cfg, "sync_bn") and self.dist.distributed:
            if self.device.type == "cuda":
                module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
            else:
                self.logger.warning("train.sync_bn ignored: SyncBatchNorm needs CUDA")
        self.module = module
        if hasattr(algorithm, "prepare_model"):  # e.g. BN-NAS freezes all but some BNs
            algorithm.prepare_model(module)
        self.amp_dtype = resolve_amp(_get(self.cfg, "amp"), self.device)
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.amp_dtype == torch.float16 and self.device.type == "cuda")
        # a step that leaves some parameters without gradients (SPOS's inactive candidates)
        # needs DDP to look for them and the unfused SGD (see build_optimizer)
        partial_grads = bool(getattr(algorithm, "find_unused_parameters", False))
        self.optimizer = optimizer if optimizer is not None else build_optimizer(
            module, self.cfg, fused=not partial_grads)
        self.scheduler = build_scheduler(self.optimizer, self.cfg, self.steps_per_epoch)
        ema = _get(self.cfg, "ema")
        self.ema = None
        if ema:
            from timm.utils import ModelEmaV3
            self.ema = ModelEmaV3(module, decay=float(ema))
        if self.dist.distributed:
            # buffers (BN statistics) are synced once at construction, not every forward
            no_buf_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in
                           inspect.signature(DistributedDataParallel.__init__).parameters
                           else {"broadcast_buffers": False})
            self.model = DistributedDataParallel(
                module, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=partial_grads,
                **no_buf_sync)
        else:
            self.model = module
        ls = float(_get(self.cfg, "label_smoothing") or 0.0)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=ls)
        self.ctx = StepContext(
            model=self.model, module=module, criterion=self.criterion, device=self.device,
            amp_dtype=self.amp_dtype, scaler=self.scaler, rank=self.dist.rank,
            world_size=self.dist.world_size, total_steps=self.total_steps, steps_per_epoch=self.steps_per_epoch)
        self.drop_path = float(_get(self.cfg, "drop_path") or 0.0)
        if self.drop_path and not hasattr(module, "drop_path_prob"):
            raise ConfigError(f"drop_path={self.drop_path}: {type(module).__name__} has no drop_path_prob "
                              "(only DARTS-cell networks use drop path)")
        self.clip_grad = _get(self.cfg, "clip_grad")
        self.clip_mode = str(_get(self.cfg, "clip_mode") or "norm")
        if self.clip_mode not in ("norm", "value"):
            raise ConfigError(f"train.clip_mode must be 'norm' or 'value', got {self.clip_mode!r}")
        self.log_interval = max(1, int(_get(self.cfg, "log_interval") or 1))
        self.ckpt_interval = int(_get(self.cfg, "ckpt_interval") or 0)
        self.step = 0
        self.epoch = 0
        self.batch_idx = 0
        self._last_saved = -1

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
        """Restore a :meth:`state_dict` (model, optimizer, ..., counters, this rank's RNG)."""
        try:
            self.module.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            if self.ema is not None:
                if state.get("ema") is None:
                    self.logger.warning("checkpoint has no EMA weights; EMA restarts from the model")
                    self.ema.module.load_state_dict(self.module.state_dict())
                else:
                    self.ema.load_state_dict(state["ema"])
            per_rank = state.get("algorithm_ranks")
            own = (per_rank[self.dist.rank] if per_rank and len(per_rank) == self.dist.world_size
                   else state["algorithm"])
            self.algorithm.load_state_dict(own)
            self.step, self.epoch, self.batch_idx = state["step"], state["epoch"], state["batch_idx"]
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(
                f"checkpoint {self.ckpt_path} does not match this run ({type(e).__name__}: "
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
        if len(rng) == self.dist.world_size:
            set_rng_state(rng[self.dist.rank])
        else:
            self.logger.warning("checkpoint was written by %d processes, now %d: RNG streams "
                                "are reseeded from rank 0's", len(rng), self.dist.world_size)
            if rng:
                set_rng_state(rng[0])

    def resume(self, missing_ok: bool = False) -> bool:
        """Load ``last.pth`` into this trainer. Returns False if absent and ``missing_ok``.

        Raises:
            CheckpointError: missing (unless ``missing_ok``), corrupt or incompatible file.
        """
        if missing_ok and not self.ckpt_path.is_file():
            return False
        state = load_checkpoint(self.ckpt_path, map_location="cpu")
        self.load_state_dict(state)
        self._last_saved = self.step
        self.logger.info("resumed from %s at step %d (epoch %d, batch %d)",
                         self.ckpt_path, self.step, self.epoch, self.batch_idx)
        return True

    # ----------------------------------------------------------------- the loop
    def run_step(self, images: torch.Tensor, targets: torch.Tensor) -> dict:
        """One optimizer step: algorithm forward/backward, clip, step, LR, EMA."""
        self.optimizer.zero_grad(set_to_none=True)
        self.ctx.step, self.ctx.epoch = self.step, self.epoch
        metrics = self.algorithm.train_step(self.ctx, images, targets)
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

    def fit(self, resume: bool | str = False, stop_after: Optional[int] = None) -> "Trainer":
        """Train until ``total_steps`` optimizer steps are done.

        Args:
            resume: True -> continue from ``out_dir/checkpoints/last.pth`` (raises
                CheckpointError if missing/corrupt); ``'auto'`` -> resume if it
                exists, else start fresh; False -> start fresh (overwrites it).
            stop_after: stop (with a checkpoint) once this many global steps are
                done, as a preempted job would; a later ``fit(resume=True)``
                continues to the same result as an uninterrupted run.

        Checkpoints are written every ``ckpt_interval`` steps, at each epoch end and
        at the end. Call once per Trainer (a logger the Trainer created is closed at
        the end). Returns self.
        """
        if resume:
            try:
                self.resume(missing_ok=(resume == "auto"))
            except BaseException:
                if self._own_logger:
                    self.logger.close()
                raise
        lg = self.logger
        if self.step == 0:
            lg.info("training %d steps (%d epochs x %d batches, world size %d) on %s, amp=%s",
                    self.total_steps, math.ceil(self.total_steps / self.steps_per_epoch),
                    self.steps_per_epoch, self.dist.world_size, self.device,
                    self.amp_dtype if self.amp_dtype else "none")
        for h in self.hooks:
            h.before_train(self)
        self.module.train()
        end = self.total_steps if stop_after is None else min(self.total_steps, int(stop_after))
        pbar = None
        if self.dist.is_main:
            from tqdm import tqdm
            pbar = tqdm(total=self.total_steps, initial=self.step, dynamic_ncols=True,
                        disable=None, desc="train")
        acc: dict[str, list] = {}
        t_last, n_img = time.perf_counter(), 0
        try:
            while self.step < end:
                epoch, start = self.epoch, self.batch_idx
                if self.drop_path:  # DARTS retraining: drop_path * epoch / epochs, set per epoch
                    self.module.drop_path_prob = self.drop_path * epoch * self.steps_per_epoch / self.total_steps
                ran = 0
                for i, (images, targets) in enumerate(self.loader.epoch(epoch, start=start), start):
                    images = images.to(self.device, non_blocking=True)
                    targets = targets.to(self.device, non_blocking=True)
                    metrics = self.run_step(images, targets)
                    ran += 1
                    n_img += images.shape[0]
                    for k, v in metrics.items():
                        acc.setdefault(k, []).append(v)
                    self.step += 1
                    self.batch_idx = i + 1
                    epoch_end = self.batch_idx >= self.steps_per_epoch
                    if epoch_end:
                        self.epoch, self.batch_idx = epoch + 1, 0
                    if pbar is not None:
                        pbar.update(1)
                    if self.step % self.log_interval == 0 or self.step == end:
                        dt = time.perf_counter() - t_last
                        self._log(acc, n_img * self.dist.world_size / max(dt, 1e-9), pbar)
                        acc, t_last, n_img = {}, time.perf_counter(), 0
                    for h in self.hooks:
                        h.after_step(self, metrics)
                    if epoch_end:
                        for h in self.hooks:
                            h.after_epoch(self)
                    if epoch_end or (self.ckpt_interval and self.step % self.ckpt_interval == 0):
                        self.save()
                    if epoch_end or self.step >= end:
                        break
                if self.epoch == epoch and self.step < end:
                    if ran == 0:
                        raise RuntimeError(f"loader.epoch({epoch}, start={start}) yielded no "
                                           f"batches but len(loader)={self.steps_per_epoch}")
                    # loader yielded fewer batches than len(loader): the epoch is over
                    self.epoch, self.batch_idx = epoch + 1, 0
                    for h in self.hooks:
                        h.after_epoch(self)
                    self.save()
            if acc:
                dt = time.perf_counter() - t_last
                self._log(acc, n_img * self.dist.world_size / max(dt, 1e-9), pbar)
            if self._last_saved != self.step:
                self.save()
            if self.step >= self.total_steps:
                for h in self.hooks:
                    h.after_train(self)
                lg.info("training done: %d steps, checkpoint %s", self.step, self.ckpt_path)
            else:
                lg.info("stopped at step %d/%d; resume with fit(resume=True)",
                        self.step, self.total_steps)
        finally:
            if pbar is not None:
                pbar.close()
            if self._own_logger:
                self.logger.close()
        return self

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
