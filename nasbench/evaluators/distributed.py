"""Split evaluator batches over ``torch.distributed`` ranks.

Usage: every rank builds the same searcher with the same seed and wraps its
evaluator in :class:`DistributedEvaluator`. Each ``evaluate(archs)`` call
(made with the same ``archs`` on every rank, which the seeded searchers
guarantee) is split round-robin, evaluated locally and gathered, so every rank
sees identical results and the searchers stay in lock-step.
"""
from __future__ import annotations

from typing import Sequence

from .base import Evaluator

__all__ = ["DistributedEvaluator"]


def _world():
    """``(rank, world_size)`` of the default process group, or ``(0, 1)``."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return 0, 1
    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


class DistributedEvaluator(Evaluator):
    """Wraps any evaluator; shards each batch across ranks.

    With an initialised default process group of ``W > 1`` ranks, rank ``r``
    evaluates ``archs[r::W]`` with the wrapped evaluator, the per-rank result
    lists are exchanged with ``dist.all_gather_object`` (any backend; results
    must be picklable) and reassembled in the original order. Every rank
    returns the full list. Otherwise ``evaluate`` passes straight through.

    All ranks must call ``evaluate`` collectively with the same ``archs``
    (a collective call: a rank that skips it deadlocks the others).

    Attributes of the wrapped evaluator are reachable through the wrapper.

    Raises:
        ValueError: the wrapped evaluator returned the wrong number of results.
    """

    def __init__(self, evaluator):
        self.evaluator = evaluator

    def __getattr__(self, name):
        if name == "evaluator":  # not yet set (e.g. during unpickling)
            raise AttributeError(name)
        return getattr(self.evaluator, name)

    def evaluate(self, archs: Sequence[tuple]) -> list[dict]:
        archs = list(archs)
        rank, world = _world()
        if world <= 1:
            return list(self.evaluator.evaluate(archs))
        import torch.distributed as dist

        mine = archs[rank::world]
        local = list(self.evaluator.evaluate(mine)) if mine else []
        gathered = [None] * world  # gather before checking, so no rank is left waiting
        dist.all_gather_object(gathered, local)
        out = [None] * len(archs)
        for r, part in enumerate(gathered):
            expected = len(archs[r::world])
            if part is None or len(part) != expected:
                raise ValueError(f"rank {r} returned {0 if part is None else len(part)} results, "
                                 f"expected {expected}; were all ranks given the same archs?")
            out[r::world] = part
        return out
