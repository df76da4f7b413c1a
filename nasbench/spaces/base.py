"""The :class:`SearchSpace` protocol: what an architecture is.

An architecture is a tuple of ints (one gene per searchable decision). Each
space also has a string key (``encode``/``decode``), the benchmark's own key
format where a benchmark exists (e.g. Channel-Bench-Macro's ``"4432214"``).
"""
from __future__ import annotations

import itertools
import math
import operator
from typing import Iterator, Sequence

import numpy as np

from ..errors import ArchError

Arch = tuple


#: genes beyond this magnitude are rejected before any message prints them
MAX_GENE = 2**62


def short_repr(value, limit: int = 200) -> str:
    """``repr(value)`` cut to ``limit`` characters; ints too long to print are described
    (also inside lists and tuples), so an error message never fails or floods."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond sys.get_int_max_str_digits()
        if isinstance(value, int):
            return f"<an int of {value.bit_length()} bits>"
        if isinstance(value, (list, tuple)):
            inner = ", ".join(short_repr(v, limit) for v in value[:50])
            text = ("[%s]" if isinstance(value, list) else "(%s)") % inner
        else:
            return "<unprintable>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def gene_value(name: str, arch, i: int, a) -> int:
    """Gene ``a`` at position ``i`` of ``arch`` as an int, or :class:`ArchError`.

    Ints (python or numpy, not bool) and integral finite floats (``4.0`` from JSON)
    are accepted; bools, strings, fractional/infinite/NaN floats and genes beyond
    :data:`MAX_GENE` are errors naming the position.
    """
    if type(a) is int:  # the common case first
        v = a
    elif isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_)):
        v = int(a)
    else:
        def bad(why):
            return ArchError(f"{name}: architecture {short_repr(arch)} is not a sequence of ints "
                             f"(gene {i} is {why})")
        if isinstance(a, (bool, np.bool_, str, bytes)):
            raise bad(f"the {type(a).__name__} {short_repr(a)}")
        try:
            v = operator.index(a)  # integer-like objects (0-dim int tensors, ...)
        except TypeError:
            try:
                f = float(a)
            except (TypeError, ValueError, OverflowError):
                raise bad(f"{short_repr(a)}, a {type(a).__name__}") from None
            if not math.isfinite(f):
                raise bad(f"{f}, not a finite number") from None
            if f != math.floor(f):
                raise bad(f"{f}, not an integer value") from None
            v = int(f)
    if not -MAX_GENE <= v <= MAX_GENE:
        raise ArchError(f"{name}: gene {i} of {short_repr(arch)} is {short_repr(v)}, far outside any "
                        "allowed value")
    return v


def gene_tuple(name: str, arch, num_genes: int) -> tuple:
    """``arch`` (a sequence) as a tuple of ``num_genes`` ints (see :func:`gene_value`), or :class:`ArchError`."""
    try:
        genes = list(arch)
    except TypeError:
        raise ArchError(f"{name}: architecture {short_repr(arch)} is not a sequence of ints") from None
    if len(genes) != num_genes:
        raise ArchError(f"{name}: architecture {short_repr(arch)} has {len(genes)} genes, expected {num_genes}")
    return tuple(gene_value(name, arch, i, a) for i, a in enumerate(genes))


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

        Accepts a tuple/list of ints (integral floats such as ``4.0`` from JSON too)
        or the string key. The error names the bad position and its allowed values;
        a bool, a fractional, infinite, NaN or huge gene is an ArchError too.
        """
        if isinstance(arch, str):
            return self.decode(arch)
        arch = gene_tuple(self.name, arch, self.num_genes)
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
            raise ArchError(f"{self.name}: cannot parse architecture key {short_repr(key)}") from None
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
