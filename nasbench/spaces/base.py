"""The :class:`SearchSpace` protocol: what an architecture is.

An architecture is a tuple of ints (one gene per searchable decision). Each
space also has a string key (``encode``/``decode``), the benchmark's own key
format where a benchmark exists (e.g. Channel-Bench-Macro's ``"4432214"``).
"""
from __future__ import annotations

import itertools
from typing import Iterator, Sequence

import numpy as np

from ..errors import ArchError

Arch = tuple


class SearchSpace:
    """Base class of discrete search spaces with per-gene choice lists.

    Subclasses set ``name`` and implement :meth:`choices`, :meth:`build`,
    :meth:`flops` and :meth:`params`; they may override :meth:`encode` and
    :meth:`decode` for a benchmark key format. Genes are independent, so
    sampling, mutation and crossover act gene-wise.
    """

    name = "space"
    #: supernet family: ``"width"`` (channel windows, :class:`~nasbench.spaces.width.WidthSpace`),
    #: ``"op_choice"`` (one operator per layer, :class:`~nasbench.spaces.op_choice.OpChoiceSpace`),
    #: ``"darts"`` (cells mixed by architecture parameters, :class:`~nasbench.spaces.bnas_v2.BNASv2Space`)
    #: or None (no supernet: benchmark-only spaces such as NAS-Bench-201 or NAS-Bench-MR)
    family: str | None = None
    #: name of the tabular benchmark (``load_benchmark``) holding this space's ground truth, or None
    benchmark: str | None = None

    # -- genes --------------------------------------------------------------
    @property
    def num_genes(self) -> int:
        raise NotImplementedError

    def choices(self, i: int) -> Sequence[int]:
        """Allowed values of gene ``i`` (ascending)."""
        raise NotImplementedError

    # -- keys ---------------------------------------------------------------
    def validate(self, arch) -> Arch:
        """Return ``arch`` as a tuple of ints, or raise :class:`ArchError`.

        Accepts a tuple/list of ints or the string key. The error names the
        bad position and its allowed values.
        """
        if isinstance(arch, str):
            return self.decode(arch)
        try:
            arch = tuple(int(a) for a in arch)
        except (TypeError, ValueError):
            raise ArchError(f"{self.name}: architecture {arch!r} is not a sequence of ints") from None
        if len(arch) != self.num_genes:
            raise ArchError(
                f"{self.name}: architecture {arch!r} has {len(arch)} genes, expected {self.num_genes}")
        for i, a in enumerate(arch):
            if a not in self.choices(i):
                raise ArchError(self.gene_error(arch, i))
        return arch

    def gene_error(self, arch: tuple, i: int) -> str:
        """Message for the illegal gene ``i`` of ``arch`` (spaces may explain their rules)."""
        return f"{self.name}: gene {i} of {arch!r} is {arch[i]}, allowed values are {list(self.choices(i))}"

    def encode(self, arch) -> str:
        """Architecture -> string key (default: genes joined by ``-``)."""
        return "-".join(str(a) for a in self.validate(arch))

    def decode(self, key: str) -> Arch:
        """String key -> architecture tuple; raises :class:`ArchError`."""
        try:
            arch = tuple(int(t) for t in str(key).split("-"))
        except ValueError:
            raise ArchError(f"{self.name}: cannot parse architecture key {key!r}") from None
        return self.validate(arch)

    def named_architectures(self) -> dict:
        """Architectures with a published name, ``{name: arch tuple}`` (e.g. BossNet-T0); default none.

        :func:`~nasbench.pipeline.common.read_arch` (``--arch NAME`` of the tools) accepts these names.
        """
        return {}

    # -- sampling -------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Arch:
        """Uniform random architecture (one draw per gene)."""
        return tuple(int(rng.choice(self.choices(i))) for i in range(self.num_genes))

    def mutate(self, arch, prob: float, rng: np.random.Generator) -> Arch:
        """Redraw every gene uniformly with probability ``prob`` (METHODS.md 1.4)."""
        arch = list(self.validate(arch))
        for i in range(self.num_genes):
            if rng.random() < prob:
                arch[i] = int(rng.choice(self.choices(i)))
        return tuple(arch)

    def crossover(self, a, b, rng: np.random.Generator) -> Arch:
        """Uniform gene-wise crossover of two parents."""
        a, b = self.validate(a), self.validate(b)
        return tuple(x if rng.random() < 0.5 else y for x, y in zip(a, b))

    # -- enumeration ----------------------------------------------------------
    def __len__(self) -> int:
        n = 1
        for i in range(self.num_genes):
            n *= len(self.choices(i))
        return n

    def __iter__(self) -> Iterator[Arch]:
        return iter(itertools.product(*[self.choices(i) for i in range(self.num_genes)]))

    # -- cost and networks ----------------------------------------------------
    def build(self, arch, num_classes: int | None = None):
        """Standalone ``nn.Module`` of ``arch`` (for retraining)."""
        raise NotImplementedError

    def flops(self, arch) -> int:
        """Multiply-accumulates (MACs) of one forward pass on one input image."""
        raise NotImplementedError

    def params(self, arch) -> int:
        """Number of parameters of the standalone network."""
        raise NotImplementedError
