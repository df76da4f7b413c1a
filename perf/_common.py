"""Shared pieces of the perf scripts: the framework's optimizer, machine facts, JSON output."""
from __future__ import annotations

import json
import os
import platform

import torch

from nasbench.config import Config
from nasbench.engine.optim import build_optimizer

# the optimizer settings every perf script times (the framework's SGD: fused when possible)
OPT_KW = dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)


def make_optimizer(model):
    """The SGD that ``nasbench.engine.Trainer`` would build for ``model`` with :data:`OPT_KW`."""
    return build_optimizer(model, Config({**OPT_KW, "no_wd_bn": False}))


def env_info(load):
    """Versions and machine facts recorded beside every measurement."""
    return {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(), "loadavg_1min_at_start": load}


def write_json(payload, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=2)
    print(f"wrote {path}")


def timed_step(model, opt, x, y, activate=None):
    """One training step, timed: ``zero_grad(set_to_none)`` -> ``activate()`` -> forward + CE -> backward -> step.

    Returns ``(total, forward+loss, backward, optimizer)`` in seconds (``total``
    includes ``zero_grad`` and ``activate``). Raises FloatingPointError on a
    non-finite loss (the timings would not be representative).
    """
    import time

    import torch.nn.functional as F
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    if activate is not None:
        activate()
    loss = F.cross_entropy(model(x), y)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    opt.step()
    t3 = time.perf_counter()
    if not torch.isfinite(loss):
        raise FloatingPointError("loss became non-finite; timings would not be representative")
    return t3 - t0, t1 - t0, t2 - t1, t3 - t2


def add_timing_args(ap, out_name: str, batch: int = 64, repeats: int = 8):
    """The options every timing script shares: batch, warmup, repeats, threads, seed, out."""
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--warmup", type=int, default=2, help="unmeasured steps of each model")
    ap.add_argument("--repeats", type=int, default=repeats, help="measured steps of each model")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", out_name))


def random_batch(batch: int, seed: int, num_classes: int = 10, size: int = 32):
    """Fixed random images ``[batch, 3, size, size]`` and labels ``[batch]`` from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, size, size, generator=g), torch.randint(0, num_classes, (batch,), generator=g)
