"""Optimizer, learning-rate schedule, mixed precision and determinism of a training run.

Every function reads the ``train`` (or ``retrain``) section of a config; a key
that is absent takes its default from ``config_defaults.yaml``, the one
source of defaults (:func:`train_defaults`).
"""
from __future__ import annotations

import math
import os
import random
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.nn as nn

from nasbench.errors import ConfigError

__all__ = ["train_defaults", "train_section", "train_value", "to_builtins", "build_optimizer", "build_scheduler", "total_steps", "resolve_amp",
           "set_deterministic"]


def train_defaults() -> dict:
    """The ``train`` section of ``config_defaults.yaml`` (used for keys a config leaves out)."""
    from nasbench.config import section_defaults
    return section_defaults("train")


def train_section(cfg: Any) -> Any:
    """Accept the whole config (with a ``train`` section) or the ``train`` section itself."""
    if cfg is None:
        return {}
    if isinstance(cfg, Mapping):
        return cfg["train"] if "train" in cfg else cfg
    return getattr(cfg, "train", cfg)


def train_value(cfg: Any, key: str) -> Any:
    """``cfg[key]``, or the ``train`` default of ``config_defaults.yaml`` when absent."""
    default = train_defaults().get(key)
    if isinstance(cfg, Mapping):
        return cfg.get(key, default)
    return getattr(cfg, key, default)


def to_builtins(obj: Any) -> Any:
    """Recursively turn mappings/sequences (e.g. an attribute-dict config) into builtins."""
    if isinstance(obj, Mapping):
        return {str(k): to_builtins(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_builtins(v) for v in obj]
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


# --------------------------------------------------------------------------- optimizer / schedule
def build_optimizer(model: nn.Module, cfg: Any, fused: bool = True) -> torch.optim.Optimizer:
    """SGD (default) or, with ``optimizer: adamw``, AdamW (betas 0.9/0.999, eps 1e-8, decoupled
    weight decay; DeiT's and BossNet-T's retraining) over ``model``'s trainable parameters.

    Reads ``optimizer, lr, momentum, nesterov, weight_decay, no_wd_bn`` from ``cfg`` (the
    ``train`` section or a config holding one). With ``no_wd_bn`` every parameter
    with ``ndim <= 1`` (BatchNorm/LayerNorm weights and biases, all biases) goes
    to a second group with ``weight_decay=0``. Parameters with ``requires_grad=False``
    are left out, and so are a DARTS supernet's ``model.arch_parameters()``
    (their own optimizer belongs to the algorithm). ``fused=False`` keeps the per-parameter implementation, needed
    when a step leaves some parameters without a gradient (SPOS: inactive
    candidates): torch's fused SGD rejects a mix of new and existing momentum buffers.
    """
    c = train_section(cfg)
    wd = float(train_value(c, "weight_decay") or 0.0)
    from nasbench.supernets.base import DifferentiableSupernet
    arch = {id(p) for p in model.arch_parameters()} if isinstance(model, DifferentiableSupernet) else set()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad and id(p) not in arch]
    if not params:
        raise ConfigError("build_optimizer: the model has no trainable parameters")
    if train_value(c, "no_wd_bn") and wd > 0:
        decay = [p for _, p in params if p.ndim > 1]
        no_decay = [p for _, p in params if p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": wd},
                  {"params": no_decay, "weight_decay": 0.0}]
        groups = [g for g in groups if g["params"]]
    else:
        groups = [{"params": [p for _, p in params], "weight_decay": wd}]
    momentum = float(train_value(c, "momentum") or 0.0)
    # fused: one multithreaded kernel per parameter. A supernet's sliced weights get
    # full-size (mostly zero) gradients, so the optimizer touches every supernet weight
    # each step; the default per-parameter loop made that 40 ms of a 360 ms ResNet step
    # on 2 CPU cores, fused cuts it to about 14 ms (perf/supernet_step_overhead.py).
    fused = fused and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for _, p in params)
    if str(train_value(c, "optimizer") or "sgd") == "adamw":  # momentum / nesterov do not apply
        return torch.optim.AdamW(groups, lr=float(train_value(c, "lr")), betas=(0.9, 0.999), eps=1e-8,
                                 fused=fused or None)
    return torch.optim.SGD(groups, lr=float(train_value(c, "lr")), momentum=momentum,
                           nesterov=bool(train_value(c, "nesterov")) and momentum > 0, fused=fused or None)


def total_steps(cfg: Any, steps_per_epoch: int) -> int:
    """``min(epochs * steps_per_epoch, max_steps)`` (max_steps None/<=0 means no cap)."""
    c = train_section(cfg)
    total = int(math.ceil(float(train_value(c, "epochs")) * steps_per_epoch))
    max_steps = train_value(c, "max_steps")
    if max_steps is not None and int(max_steps) > 0:
        total = min(total, int(max_steps))
    if total <= 0:
        raise ConfigError(f"train: epochs={train_value(c, 'epochs')} x {steps_per_epoch} steps/epoch "
                          f"and max_steps={max_steps} give no training steps")
    return total


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: Any, steps_per_epoch: int):
    """Per-iteration schedule: linear warmup then cosine (timm ``CosineLRScheduler``),
    or with ``schedule: linear`` a linear decay to ``min_lr`` (timm ``PolyLRScheduler``, power 1),
    or with ``schedule: step`` ``lr * decay_rate ** floor((t - W) / (decay_epochs * steps_per_epoch))``
    after the warm-up (timm ``StepLRScheduler``; DARTS' ImageNet StepLR(1, 0.97), train_imagenet.py).

    LR at update ``t`` (``t`` optimizer steps done; call ``sched.step_update(t)``
    after each step): ``warmup_lr + t * (lr - warmup_lr) / W`` for ``t < W``, then
    ``min_lr + (lr - min_lr) * (1 + cos(pi * (t - W) / (T - W))) / 2``, reaching
    ``min_lr`` at ``t = T``. ``W = round(warmup_epochs * steps_per_epoch)`` (capped at
    ``T - 1``), ``T = min(epochs * steps_per_epoch, max_steps)``. The returned
    object has ``state_dict()``/``load_state_dict()``.
    """
    from timm.scheduler import CosineLRScheduler, PolyLRScheduler, StepLRScheduler

    c = train_section(cfg)
    total = total_steps(c, steps_per_epoch)
    warmup = int(round(float(train_value(c, "warmup_epochs") or 0) * steps_per_epoch))
    warmup = max(0, min(warmup, total - 1))
    kind = str(train_value(c, "schedule") or "cosine")
    if kind == "linear":  # BN-NAS / SPOS: lr decays linearly per iteration to min_lr
        return PolyLRScheduler(
            optimizer, t_initial=max(1, total - warmup), power=1.0, lr_min=float(train_value(c, "min_lr") or 0.0),
            warmup_t=warmup, warmup_lr_init=float(train_value(c, "warmup_lr") or 0.0),
            warmup_prefix=True, t_in_epochs=False, cycle_limit=1)
    if kind == "step":  # DARTS ImageNet (StepLR): lr x decay_rate every decay_epochs, counted per iteration
        period = float(train_value(c, "decay_epochs") or 1.0) * steps_per_epoch
        return StepLRScheduler(
            optimizer, decay_t=period, decay_rate=float(train_value(c, "decay_rate") or 1.0),
            warmup_t=warmup, warmup_lr_init=float(train_value(c, "warmup_lr") or 0.0),
            warmup_prefix=True, t_in_epochs=False)
    if kind != "cosine":
        raise ConfigError(f"train.schedule must be 'cosine', 'linear' or 'step', got {kind!r}")
    return CosineLRScheduler(
        optimizer, t_initial=max(1, total - warmup), lr_min=float(train_value(c, "min_lr") or 0.0),
        warmup_t=warmup, warmup_lr_init=float(train_value(c, "warmup_lr") or 0.0),
        warmup_prefix=True, t_in_epochs=False, cycle_limit=1)
