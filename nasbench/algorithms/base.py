"""Base class of single-path supernet-training algorithms, and channel-fairness counting.

An algorithm owns the sampling rule and the losses of one paper
(``train_step``) and says how that paper scores a subnet (``make_evaluator``).
The trainer (:mod:`nasbench.engine.trainer`) calls ``train_step(ctx, x, y)``
once per optimizer step; the algorithm runs its own forward and backward
passes through ``ctx`` (see :class:`nasbench.engine.trainer.StepContext`).

Sampling uses the algorithm's own ``numpy`` generator seeded from the config,
identical on every rank, so every process trains the same subnet at each step
without communication; its state is saved in checkpoints.
"""
from __future__ import annotations

import contextlib
import heapq

import numpy as np

from ..registry import ALGORITHMS


class ChannelCounter:
    """Counts how often each channel of each searchable dimension was trained.

    ``counts[l]`` is an int64 array of the supernet width of dimension ``l``;
    :meth:`add` increments the channels of every window in one trained path.
    """

    def __init__(self, space):
        self.space = space
        self.counts = [np.zeros(c, dtype=np.int64) for c in space.super_channels]

    def add(self, windows):
        for cnt, (s, e) in zip(self.counts, windows):
            cnt[s:e] += 1

    def ratios(self) -> list[float]:
        """Max/min count per dimension (``inf`` if a channel was never trained)."""
        return [float(c.max() / c.min()) if c.min() > 0 else float("inf") for c in self.counts]

    def state_dict(self):
        return {"counts": [c.copy() for c in self.counts]}

    def load_state_dict(self, d):
        self.counts = [np.asarray(c, dtype=np.int64).copy() for c in d["counts"]]


class SupernetAlgorithm:
    """Shared machinery of single-path supernet training (width and operator spaces).

    Args:
        space: a :class:`~nasbench.spaces.width.WidthSpace` or an
            :class:`~nasbench.spaces.op_choice.OpChoiceSpace`.
        seed: seed of the sampling generator (same on all ranks).
        loss_records: size of the heap of lowest-loss ``(arch, loss)`` records
            kept for BCNet's prior initial population (METHODS.md 1.3 step 4).
        count_channels: keep a :class:`ChannelCounter` of trained channels
            (width spaces only; ignored for spaces without channel windows).
    Subclasses implement :meth:`paths` (the ``(arch, side)`` pairs trained at
    the next step) and set ``eval_sides`` (paths averaged by the evaluator)
    and ``default_evaluator`` (``"accuracy"``: BN recalibration + validation;
    ``"bn_indicator"``: BN-NAS's data-free score). They may define
    ``prepare_model(model)``, which the trainer calls once before it builds
    the optimizer (e.g. to freeze parameters).
    """

    eval_sides = ("left",)
    default_evaluator = "accuracy"

    def __init__(self, space, seed=0, loss_records=100, count_channels=True, **unused):
        self.space = space
        self.rng = np.random.default_rng(seed)
        self.records: list = []  # heap of (-loss, tie, arch): keeps the lowest losses
        self._tie = 0
        width = space.family == "width"
        # loss records feed BCNet's prior, which needs per-layer width FLOPs
        self.loss_records = int(loss_records) if width else 0
        self.counter = ChannelCounter(space) if count_channels and width else None

    def sample(self) -> tuple:
        """Uniform choice per gene (identical on every rank)."""
        return self.space.sample(self.rng)

    def paths(self) -> list[tuple[tuple, str]]:
        raise NotImplementedError

    def train_step(self, ctx, images, targets) -> dict:
        """Forward/backward every path of this step; losses are scaled by 1/#paths.

        ``images``: ``[b, 3, H, W]``; ``targets``: ``[b]``. Returns
        ``{"loss": mean loss over paths}``. The trainer takes one optimizer step after.
        """
        paths = self.paths()
        total, per_arch = 0.0, {}
        for i, (arch, side) in enumerate(paths):
            last = i == len(paths) - 1
            ctx.module.set_active(arch, side)
            # DDP all-reduces once, after the last path's backward
            with contextlib.nullcontext() if last else ctx.no_sync():
                with ctx.autocast():
                    loss = ctx.criterion(ctx.model(images), targets)
                ctx.backward(loss / len(paths), last=last)
            value = float(loss.detach())
            total += value
            per_arch.setdefault(arch, []).append(value)
            if self.counter is not None:
                self.counter.add(self.space.windows(arch, side))
        for arch, values in per_arch.items():  # BCNet: mean of left and right losses
            self._record(arch, sum(values) / len(values))
        return {"loss": total / len(paths)}

    def _record(self, arch, loss):
        if self.loss_records <= 0:
            return
        item = (-loss, self._tie, tuple(int(a) for a in arch))
        self._tie += 1
        if len(self.records) < self.loss_records:
            heapq.heappush(self.records, item)
        elif item > self.records[0]:
            heapq.heapreplace(self.records, item)

    def loss_history(self) -> list[tuple[tuple, float]]:
        """Recorded ``(arch, loss)`` pairs, lowest loss first."""
        return [(a, -nl) for nl, _, a in sorted(self.records, reverse=True)]

    def state_dict(self) -> dict:
        d = {"rng": self.rng.bit_generator.state, "records": list(self.records), "tie": self._tie}
        if self.counter is not None:
            d["counter"] = self.counter.state_dict()
        return d

    def load_state_dict(self, d):
        self.rng.bit_generator.state = d["rng"]
        self.records = [tuple(r) for r in d["records"]]
        heapq.heapify(self.records)
        self._tie = d["tie"]
        if self.counter is not None and "counter" in d:
            self.counter.load_state_dict(d["counter"])


def simulate_fairness(algorithm: SupernetAlgorithm, steps: int) -> list[float]:
    """Run ``steps`` steps of ``algorithm``'s sampling rule without training and
    return the per-dimension max/min channel count (1.0 = perfectly fair).

    Only the sampling is simulated (cheap, no data); ``train_supernet`` records
    the same counts during real training in ``fairness.json``.
    """
    if algorithm.counter is None:
        algorithm.counter = ChannelCounter(algorithm.space)
    for _ in range(int(steps)):
        for arch, side in algorithm.paths():
            algorithm.counter.add(algorithm.space.windows(arch, side))
    return algorithm.counter.ratios()


def build_algorithm(cfg_alg, space, seed=0):
    """Algorithm from a config section: ``type`` picks the class, the rest are kwargs."""
    kwargs = {k: v for k, v in dict(cfg_alg).items() if k != "type"}
    return ALGORITHMS.build(cfg_alg["type"], space, seed=seed, **kwargs)
