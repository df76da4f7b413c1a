"""Block-wise view of a search space (BossNAS, DNA): genes grouped into consecutive blocks.

BossNAS (arXiv 2103.12424, METHODS.md section 3) trains and rates a supernet
block by block. A block is a run of consecutive genes; its *path* is the
tuple of those genes and its *block key* the string of the genes' choice
indices (``choices(i).index(gene)``), concatenated without separator, as in
the reference's rating files ``path_rank_{block}.yml``: NATS-Bench Ss
``16:24:32:40:48`` on CIFAR-10 (blocks [2, 2, 1]) has block keys ``"12"``,
``"34"``, ``"5"``; MBConv block 2 ``[1, 1, 0, 1]`` is ``"1101"``.
Every gene has at most 10 choices, so each gene is one digit.
"""
from __future__ import annotations

import itertools
from typing import Iterator, Sequence

import numpy as np

from ..errors import ArchError


def fair_paths(space, block: int, rng: np.random.Generator) -> list[tuple]:
    """Fair sampling of block ``block`` of a block-wise ``space``: every layer gets a random
    permutation of its choices (FairNAS; BossNAS's ``FairPathHook``, METHODS.md 3.2).

    Returns ``K`` paths (tuples of the block's genes), ``K`` = the largest number of choices
    of a layer of the block (layers with fewer choices repeat a fresh permutation), so that
    every choice of every layer is trained exactly once per step."""
    sl = space.block_slice(block)
    choices = [list(space.choices(i)) for i in range(sl.start, sl.stop)]
    k = max(len(c) for c in choices)
    cols = []
    for ch in choices:
        idx = np.concatenate([rng.permutation(len(ch)) for _ in range(-(-k // len(ch)))])[:k]
        cols.append([ch[int(i)] for i in idx])
    return [tuple(col[j] for col in cols) for j in range(k)]


class BlockwiseMixin:
    """Adds blocks to a :class:`~nasbench.spaces.base.SearchSpace`.

    The class using it sets ``block_sizes`` (genes per block, summing to
    ``num_genes``) and has at most 10 choices per gene.
    """

    block_sizes: Sequence[int] = ()

    @property
    def num_blocks(self) -> int:
        return len(self.block_sizes)

    def block_slice(self, block: int) -> slice:
        """Gene positions of ``block`` as a slice. Raises ``IndexError`` for a bad block."""
        if not 0 <= int(block) < len(self.block_sizes):
            raise IndexError(f"{self.name}: block {block} out of range 0..{len(self.block_sizes) - 1}")
        start = sum(self.block_sizes[:block])
        return slice(start, start + self.block_sizes[block])

    def block_path(self, arch, block: int) -> tuple:
        """The genes of ``arch`` (validated) in ``block``."""
        return tuple(self.validate(arch)[self.block_slice(block)])

    def block_key(self, arch, block: int) -> str:
        """Block key of ``arch`` in ``block`` (choice indices as digits)."""
        sl = self.block_slice(block)
        arch = self.validate(arch)
        return "".join(str(self.choices(i).index(arch[i])) for i in range(sl.start, sl.stop))

    def block_keys(self, arch) -> tuple[str, ...]:
        """Block keys of ``arch``, one per block."""
        arch = self.validate(arch)
        keys, pos = [], 0
        for n in self.block_sizes:
            keys.append("".join(str(self.choices(i).index(arch[i])) for i in range(pos, pos + n)))
            pos += n
        return tuple(keys)

    def decode_block_key(self, block: int, key) -> tuple:
        """Block key -> the genes of ``block``.

        Raises:
            ArchError: not a string of ``block_sizes[block]`` digits, or a
                digit that is not a choice index (the message names the key).
        """
        sl = self.block_slice(block)
        n = sl.stop - sl.start
        if not isinstance(key, str) or len(key) != n or not key.isdigit() or not key.isascii():
            raise ArchError(f"{self.name}: block {block} key {key!r} must be a string of {n} digits "
                            f"(choice indices of genes {sl.start}..{sl.stop - 1})")
        genes = []
        for j, d in enumerate(key):
            ch = self.choices(sl.start + j)
            if int(d) >= len(ch):
                raise ArchError(f"{self.name}: block {block} key {key!r}: digit {j} is {d}, "
                                f"gene {sl.start + j} has only {len(ch)} choices (0..{len(ch) - 1})")
            genes.append(ch[int(d)])
        return tuple(genes)

    def arch_from_block_keys(self, keys: Sequence[str]) -> tuple:
        """The architecture whose block keys are ``keys`` (one per block). Raises :class:`ArchError`."""
        keys = list(keys)
        if len(keys) != self.num_blocks:
            raise ArchError(f"{self.name}: {len(keys)} block keys {keys!r}, expected {self.num_blocks}")
        arch = []
        for b, k in enumerate(keys):
            arch.extend(self.decode_block_key(b, k))
        return self.validate(tuple(arch))

    def block_choices(self, block: int) -> Iterator[str]:
        """Every block key of ``block``, in the reference's enumeration order (lexicographic)."""
        sl = self.block_slice(block)
        ranges = [range(len(self.choices(i))) for i in range(sl.start, sl.stop)]
        return ("".join(str(d) for d in p) for p in itertools.product(*ranges))

    # -- the block-wise training protocol (BossNAS) ----------------------------
    def block_candidates(self, block: int, prefix: Sequence[str] = ()) -> list[str]:
        """Block keys a block-wise search rates for ``block`` after the chosen keys ``prefix`` of
        the earlier blocks: here every path of the block, whatever the prefix (genes are
        independent); spaces whose blocks depend on earlier ones (HyTra) narrow it."""
        return list(self.block_choices(block))

    def sample_block_paths(self, block: int, prefix: Sequence[str], rng: np.random.Generator) -> list[tuple]:
        """Paths of ``block`` trained together in one step (after ``prefix``): :func:`fair_paths`."""
        return fair_paths(self, block, rng)

    def num_block_paths(self, block: int) -> int:
        """Number of paths (block keys) of ``block``."""
        sl = self.block_slice(block)
        n = 1
        for i in range(sl.start, sl.stop):
            n *= len(self.choices(i))
        return n


__all__ = ["BlockwiseMixin", "fair_paths"]
