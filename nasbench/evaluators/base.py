"""The Evaluator protocol: architectures in, named metrics out.

Supernet scorers (:mod:`.accuracy`, :mod:`.indicator`, :mod:`.genotype`),
predictors and tabular benchmarks all implement :class:`Evaluator`, so every
searcher runs unchanged on a supernet or on exact ground truth (DESIGN.md,
"Four small protocols"). Evaluators of a trained supernet are registered in
:data:`nasbench.registry.EVALUATORS` under the names ``eval.type`` uses; each
declares its config keys (``KEYS``), whether it needs data, which supernets
it can score (:meth:`Evaluator.check`) and how it is built from a config
(:meth:`Evaluator.from_config`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

__all__ = ["Evaluator", "EvalContext"]


@dataclass
class EvalContext:
    """What a registered evaluator may use when it is built for a trained supernet.

    Attributes:
        supernet: the supernet (a :class:`~nasbench.supernets.base.Supernet`), on ``device``.
        algorithm: the algorithm that trained it (e.g. its ``eval_sides``).
        device: ``torch.device`` of the supernet.
        make_loader: ``make_loader(split, train, batch_size=None, seed_offset=0)`` ->
            a batch loader over ``split`` (``"train"``/``"val"``) of the run's data;
            None when the evaluator declared ``needs_data = False``.
        autocast: context-manager factory for mixed precision, or None.
    """

    supernet: Any
    algorithm: Any = None
    device: Any = "cpu"
    make_loader: Callable | None = None
    autocast: Callable | None = None


class Evaluator:
    """Scores architectures. Subclasses implement :meth:`evaluate`.

    ``evaluate(archs)`` takes a list of architecture tuples and returns one
    dict per architecture with at least ``score`` (float, higher is better)
    and ``flops`` (int, MACs); supernet evaluators add ``acc`` (percent) and
    ``loss``; benchmarks add their true metrics.
    """

    #: config keys of a registered evaluator (``eval.<key>``; see :class:`nasbench.registry.Key`)
    KEYS: dict = {}
    #: whether :meth:`from_config` needs ``ctx.make_loader`` (the tools load data only then)
    needs_data = False

    def evaluate(self, archs: Sequence[tuple]) -> list[dict]:
        raise NotImplementedError

    def __call__(self, archs):
        return self.evaluate(archs)

    def best_architecture(self):
        """``(arch, extras)`` when the evaluator knows the best architecture without a
        search (a DARTS supernet's argmax; ``extras`` is merged into ``result.json``),
        else None (the default: a searcher asks :meth:`evaluate`)."""
        return None

    @classmethod
    def check(cls, supernet) -> None:
        """Raise :class:`~nasbench.errors.ConfigError` when this evaluator cannot score
        ``supernet`` (called before any output is written)."""

    @classmethod
    def from_config(cls, settings: dict, ctx: EvalContext) -> "Evaluator":
        """The evaluator of an ``eval`` section's type-specific ``settings`` for ``ctx``."""
        raise NotImplementedError(f"{cls.__name__} cannot be built from a config")
