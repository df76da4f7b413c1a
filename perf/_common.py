"""Shared pieces of the perf scripts: the framework's optimizer, machine facts, JSON output."""
from __future__ import annotations

import json
import os
import platform

import torch

from nasbench.config import Config
from nasbench.engine.trainer import build_optimizer

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
