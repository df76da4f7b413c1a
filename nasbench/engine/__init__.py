"""Engine: the training loop, distributed helpers, checkpoints and run logging.

* :mod:`~nasbench.engine.dist`       -- ``init_distributed()`` for torchrun/slurm/single process.
* :mod:`~nasbench.engine.checkpoint` -- atomic ``save_checkpoint`` / checked ``load_checkpoint``.
* :mod:`~nasbench.engine.logger`     -- ``RunLogger``: console, log.txt, log.jsonl, TensorBoard.
* :mod:`~nasbench.engine.context`    -- ``StepContext``: what an algorithm's step may use.
* :mod:`~nasbench.engine.optim`      -- ``build_optimizer``, ``build_scheduler``, ``resolve_amp``,
  ``set_deterministic``; defaults from ``config_defaults.yaml``.
* :mod:`~nasbench.engine.trainer`    -- ``Trainer``, ``HookBase``.

The supervised retraining algorithm and test accuracy live with the algorithms
(:mod:`nasbench.algorithms.supervised`): the engine knows no labels or losses.
"""

from nasbench.engine.checkpoint import get_rng_state, load_checkpoint, save_checkpoint, set_rng_state
from nasbench.engine.context import StepContext
from nasbench.engine.dist import (
    DistInfo, all_gather_object, all_reduce_mean, all_reduce_sum, barrier, broadcast_object,
    cleanup, get_dist_info, get_rank, get_world_size, init_distributed, is_main,
)
from nasbench.engine.logger import RunLogger
from nasbench.engine.optim import build_optimizer, build_scheduler, resolve_amp, set_deterministic, total_steps
from nasbench.engine.trainer import HookBase, Trainer

__all__ = [
    "DistInfo", "init_distributed", "get_dist_info", "is_main", "get_rank", "get_world_size",
    "barrier", "broadcast_object", "all_gather_object", "all_reduce_mean", "all_reduce_sum",
    "cleanup", "save_checkpoint", "load_checkpoint", "get_rng_state", "set_rng_state",
    "RunLogger", "Trainer", "StepContext", "HookBase", "build_optimizer",
    "build_scheduler", "total_steps", "resolve_amp", "set_deterministic",
]
