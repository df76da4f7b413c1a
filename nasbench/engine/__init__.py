"""Engine: the training loop, distributed helpers, checkpoints and run logging.

* :mod:`~nasbench.engine.dist`       -- ``init_distributed()`` for torchrun/slurm/single process.
* :mod:`~nasbench.engine.checkpoint` -- atomic ``save_checkpoint`` / checked ``load_checkpoint``.
* :mod:`~nasbench.engine.logger`     -- ``RunLogger``: console, log.txt, log.jsonl, TensorBoard.
* :mod:`~nasbench.engine.trainer`    -- ``Trainer``, ``StepContext``, ``StandardAlgorithm``,
  ``build_optimizer``, ``build_scheduler``, ``evaluate_accuracy``, ``set_deterministic``.
"""

from nasbench.engine.checkpoint import get_rng_state, load_checkpoint, save_checkpoint, set_rng_state
from nasbench.engine.dist import (
    DistInfo, all_gather_object, all_reduce_mean, all_reduce_sum, barrier, broadcast_object,
    cleanup, get_dist_info, get_rank, get_world_size, init_distributed, is_main,
)
from nasbench.engine.logger import RunLogger
from nasbench.engine.trainer import (
    HookBase, StandardAlgorithm, StepContext, Trainer, build_optimizer, build_scheduler,
    evaluate_accuracy, resolve_amp, set_deterministic, total_steps,
)

__all__ = [
    "DistInfo", "init_distributed", "get_dist_info", "is_main", "get_rank", "get_world_size",
    "barrier", "broadcast_object", "all_gather_object", "all_reduce_mean", "all_reduce_sum",
    "cleanup", "save_checkpoint", "load_checkpoint", "get_rng_state", "set_rng_state",
    "RunLogger", "Trainer", "StepContext", "StandardAlgorithm", "HookBase", "build_optimizer",
    "build_scheduler", "total_steps", "evaluate_accuracy", "resolve_amp", "set_deterministic",
]
