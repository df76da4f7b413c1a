"""The Algorithm protocol, the base of single-path supernet training, and channel-fairness counting.

An algorithm is one paper's method (DESIGN.md, "Four small protocols"). It
declares its own config keys (``KEYS``), the data it trains on
(:meth:`Algorithm.train_loader`), its step (``train_step(ctx, batch)``: the
sampling rule and the losses of that paper) and how that paper scores a
subnet (:meth:`Algorithm.make_evaluator`, by default the registered evaluator
that ``eval.type`` names, ``auto`` being the algorithm's
``default_evaluator``). The trainer (:mod:`nasbench.engine.trainer`) calls
``train_step(ctx, batch)`` once per optimizer step with whatever the
algorithm's loader yields; the algorithm runs its own forward and backward
passes through ``ctx`` (:class:`nasbench.engine.context.StepContext`). The
pipeline asks the algorithm; it never names a method.

Sampling uses the algorithm's own ``numpy`` generator seeded from the config,
identical on every rank, so every process trains the same subnet at each step
without communication; its state is saved in checkpoints.
"""
from __future__ import annotations

import contextlib
import heapq
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch.nn as nn

from ..engine.checkpoint import to_plain
from ..errors import ArchError, ConfigError
from ..registry import ALGORITHMS, EVALUATORS, Key


def _describe(value) -> str:
    """Short ``type value`` text of a bad state entry for error messages."""
    try:
        text = repr(value)
    except Exception:  # e.g. an int too long to print
        text = "(unprintable)"
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


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
        """``{"counts": [[int, ...] per dimension]}`` (lists, so checkpoints stay plain)."""
        return {"counts": [c.tolist() for c in self.counts]}

    def load_state_dict(self, d):
        """Restore :meth:`state_dict` (lists, or the int64 arrays of checkpoints before format 1).

        Raises:
            ValueError: not a dict with one count list per dimension of the space's widths.
        """
        counts = d.get("counts") if isinstance(d, Mapping) else None
        widths = list(self.space.super_channels)
        if not isinstance(counts, (list, tuple)) or len(counts) != len(widths):
            raise ValueError(f"counter: 'counts' must be {len(widths)} lists of channel counts, "
                             f"got {_describe(counts)}")
        out = []
        for i, (c, w) in enumerate(zip(counts, widths)):
            try:
                a = np.asarray(c)
            except (TypeError, ValueError, OverflowError):
                a = None
            if a is None or a.shape != (w,) or a.dtype.kind not in "iu" or (a < 0).any():
                raise ValueError(f"counter: counts[{i}] must be {w} non-negative ints, got {_describe(c)}")
            out.append(a.astype(np.int64))
        self.counts = out


class Algorithm:
    """Base class of every supernet-training algorithm (the protocol the pipeline and trainer use).

    Class attributes:
        KEYS: the algorithm's config keys (``algorithm.<key>``), ``{name: Key}``;
            subclasses extend their bases' keys (``None`` removes one).
        default_evaluator: registered evaluator used for ``eval.type: auto``.
        eval_sides: paths an accuracy evaluator averages per architecture.
        find_unused_parameters: a step leaves some parameters without gradient
            (DDP must look for them; the weight SGD is unfused).
        owns_optimizer: the algorithm builds, zeroes and steps its weight optimizer
            and LR schedule itself inside ``train_step`` (and keeps their state in
            :meth:`state_dict`); the trainer then only calls ``train_step``
            (BossNAS: LARS, a new optimizer per block, gradient accumulation).

    Args:
        space: the :class:`~nasbench.spaces.base.SearchSpace` being searched.
        seed: seed of the algorithm's own generator (identical on every rank).
    """

    KEYS: dict = {}
    default_evaluator = "accuracy"
    eval_sides = ("left",)
    find_unused_parameters = False
    owns_optimizer = False

    def __init__(self, space, seed=0):
        self.space = space
        self.rng = np.random.default_rng(seed)

    # -- what the pipeline asks ---------------------------------------------------
    def train_loader(self, make_loader):
        """The loader the trainer iterates; ``make_loader(split, train, batch_size=None,
        seed_offset=0)`` builds a seeded loader over ``"train"`` or ``"val"``. Algorithms
        that need more (an architecture split, two views) build and keep it here."""
        return make_loader("train", True)

    def make_evaluator(self, eval_cfg, ctx):
        """The evaluator of a trained supernet: the registered evaluator ``eval_cfg.type``
        built from ``eval_cfg`` and ``ctx`` (:class:`~nasbench.evaluators.base.EvalContext`).
        Methods with their own scoring override this."""
        cls = EVALUATORS.get(eval_cfg["type"])
        cls.check(ctx.supernet)
        return cls.from_config({k: v for k, v in dict(eval_cfg).items() if k in cls.KEYS}, ctx)

    def loss_history(self) -> list:
        """``[(arch, loss)]`` recorded during training, lowest loss first (for search priors)."""
        return []

    def write_reports(self, out, label: str = "") -> None:
        """Write the algorithm's own reports into the run folder after training (rank 0)."""

    def rating_file_report(self, directory, benchmark) -> dict:
        """Rate every architecture of ``benchmark`` from rating files in ``directory`` (no checkpoint).

        ``tools/rank_eval.py --ratings DIR`` asks this. Methods whose search result is a
        table saved as files (BossNAS's per-block ``path_rank_{b}.yml``, METHODS.md 3.4)
        return ``{"num_archs", "correlations": {"kendall_tau", "spearman", "pearson"}
        (positive when a better rating goes with a higher benchmark accuracy),
        "size_proxies", "best"}``; the default has no such files.

        Raises:
            ConfigError: this algorithm writes no rating files (the default).
        """
        raise ConfigError(f"--ratings: algorithm {type(self).__name__} writes no rating files to rate "
                          "architectures from; pass --ckpt (a supernet checkpoint) instead")

    # -- what the trainer calls -----------------------------------------------------
    def setup(self, module: nn.Module, train_cfg) -> None:
        """Called once with the unwrapped model before the weight optimizer is built
        (``train_cfg``: the ``train`` section), e.g. to freeze parameters or build losses."""

    def train_step(self, ctx, batch) -> dict:
        """One step's forwards and backwards through ``ctx``; returns losses/metrics."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """``{"rng": bit generator state}`` in plain python values (weights-only loadable)."""
        return {"rng": to_plain(self.rng.bit_generator.state)}

    def load_state_dict(self, d) -> None:
        """Restore :meth:`state_dict`.

        Raises:
            ValueError: not a dict holding a generator state of this kind (callers add the file).
        """
        if not isinstance(d, Mapping) or "rng" not in d:
            raise ValueError(f"the algorithm state must be a dict with an 'rng' entry, got {_describe(d)}")
        self._restore_rng(d["rng"])

    def _restore_rng(self, state) -> None:
        """Set the bit generator to ``state``; leaves it untouched and raises ValueError if
        ``state`` is not a state of this generator kind."""
        before = self.rng.bit_generator.state
        try:
            self.rng.bit_generator.state = state
        except (TypeError, ValueError, KeyError, OverflowError) as e:
            self.rng.bit_generator.state = before
            raise ValueError(f"algorithm 'rng' is not a {type(self.rng.bit_generator).__name__} state "
                             f"({_describe(state)}: {e})") from None


class SupervisedMixin:
    """Cross-entropy on ``(images, targets)`` batches with the run's label smoothing."""

    criterion = None

    def setup(self, module, train_cfg) -> None:
        """Build ``self.criterion`` (``train_cfg.label_smoothing``)."""
        ls = float(train_cfg.get("label_smoothing") or 0.0) if train_cfg is not None else 0.0
        self.criterion = nn.CrossEntropyLoss(label_smoothing=ls)


#: config keys of the width-search algorithms (channel counting and BCNet's loss records)
WIDTH_KEYS = {
    "loss_records": Key(100, "lowest-loss (arch, loss) records kept for BCNet's prior initial population",
                        int, (0, None), unit="count"),
    "count_channels": Key(True, "count how often each channel is trained (fairness.json)", bool),
}


class SupernetAlgorithm(SupervisedMixin, Algorithm):
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
    ``"bn_indicator"``: BN-NAS's data-free score). They may extend
    :meth:`Algorithm.setup`, which the trainer calls once before it builds
    the optimizer (e.g. to freeze parameters).
    """

    def __init__(self, space, seed=0, loss_records=100, count_channels=True):
        super().__init__(space, seed)
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

    def train_step(self, ctx, batch) -> dict:
        """Forward/backward every path of this step; losses are scaled by 1/#paths.

        ``batch`` = ``(images [b, 3, H, W], targets [b])``. Returns
        ``{"loss": mean loss over paths}``. The trainer takes one optimizer step after.
        """
        images, targets = batch
        paths = self.paths()
        total, per_arch = 0.0, {}
        for i, (arch, side) in enumerate(paths):
            last = i == len(paths) - 1
            ctx.module.set_active(arch, side)
            # DDP all-reduces once, after the last path's backward
            with contextlib.nullcontext() if last else ctx.no_sync():
                with ctx.autocast():
                    loss = self.criterion(ctx.model(images), targets)
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

    def write_reports(self, out, label: str = "") -> None:
        """``fairness.json`` + ``fairness.png`` when channels were counted (width spaces)."""
        if self.counter is not None:
            write_fairness(self.counter, out, label=label)

    def state_dict(self) -> dict:
        """``{"rng": bit generator state, "records": [(-loss, tie, arch)], "tie": int[, "counter"]}``,
        plain python values only (checkpoints load with ``torch.load(weights_only=True)``)."""
        d = {"rng": to_plain(self.rng.bit_generator.state), "records": list(self.records), "tie": self._tie}
        if self.counter is not None:
            d["counter"] = self.counter.state_dict()
        return d

    def load_state_dict(self, d):
        """Restore :meth:`state_dict`.

        Raises:
            ValueError: a state that is not a dict of this form; the message names the
                bad entry (callers add the checkpoint's path).
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"the algorithm state must be a dict, got {_describe(d)}")
        missing = [k for k in ("rng", "records", "tie") if k not in d]
        if missing:
            raise ValueError(f"the algorithm state lacks {', '.join(missing)} (it has {_describe(sorted(map(str, d)))})")
        tie = d["tie"]
        if isinstance(tie, bool) or not isinstance(tie, int) or tie < 0:
            raise ValueError(f"algorithm 'tie' must be a non-negative int, got {_describe(tie)}")
        records = d["records"]
        if not isinstance(records, (list, tuple)):
            raise ValueError(f"algorithm 'records' must be a list, got {_describe(records)}")
        records = [self._check_record(i, r) for i, r in enumerate(records)]
        self._restore_rng(d["rng"])
        if self.counter is not None and d.get("counter") is not None:
            self.counter.load_state_dict(d["counter"])
        self.records = records
        heapq.heapify(self.records)
        self._tie = tie

    def _check_record(self, i, r) -> tuple:
        """``(-loss: float, tie: int, arch: tuple of ints)`` or ValueError."""
        ok = isinstance(r, (list, tuple)) and len(r) == 3
        if ok:
            nl, tie, arch = r
            ok = (isinstance(nl, (int, float)) and not isinstance(nl, bool) and isinstance(tie, int)
                  and isinstance(arch, (list, tuple)) and all(isinstance(a, int) for a in arch))
        if not ok:
            raise ValueError(f"algorithm 'records'[{i}] must be (-loss, tie, arch), got {_describe(r)}")
        try:
            arch = self.space.validate(arch)
        except ArchError as e:
            raise ValueError(f"algorithm 'records'[{i}]: {e}") from None
        return (float(nl), int(tie), arch)


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


def write_fairness(counter, out, label=""):
    """Write ``fairness.json`` (per-dimension max/min training count) and a bar plot."""
    from ..metrics.plots import plot_channel_counts
    from ..utils import atomic_write_json
    ratios = counter.ratios()
    atomic_write_json({"algorithm": label, "max_min_ratio": ratios,
                       "counts": [c.tolist() for c in counter.counts]}, Path(out) / "fairness.json")
    plot_channel_counts(counter.counts, Path(out) / "fairness.png", title=f"channel training counts ({label})")
    return ratios


def build_algorithm(cfg_alg, space, seed=0):
    """Algorithm from a config section: ``type`` picks the class, its declared keys are the kwargs.

    Raises:
        ConfigError: unknown type, a key the type does not declare, or a bad value.
    """
    from ..config import resolve_section
    section = resolve_section("algorithm", cfg_alg)
    kwargs = {k: v for k, v in section.items() if k != "type"}
    return ALGORITHMS.build(section["type"], space, seed=seed, **kwargs)
