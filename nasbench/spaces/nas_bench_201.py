"""NAS-Bench-201 cell search space (Dong & Yang, ICLR 2020, arXiv 2001.00326).

A cell is a DAG on 4 nodes; each of the 6 edges ``j -> i`` (j < i) carries one
of 5 operations. Genes follow the NB201 edge order and the NB201 op order:

* edges (gene position): ``1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2``
* ops (gene value): ``0 none, 1 skip_connect, 2 nor_conv_1x1, 3 nor_conv_3x3, 4 avg_pool_3x3``

so 5^6 = 15,625 architectures. Keys are the usual NB201 arch strings
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (``op~j`` is the op on edge ``j -> i``).

One-hot embedding (:meth:`NASBench201Space.one_hot`) reproduces the 30-d
``embedding`` of the NAS-Bench-201 pickle shipped with NCP ([NCP]
dingmyu/NCP, ``data/nas-bench-201/trainval.pkl``): 6 blocks of 5, one block per
edge in the NB201 edge order above, but with the slots of each block in the
order :data:`EMBED_OPS` = (avg_pool_3x3, none, skip_connect, nor_conv_1x1,
nor_conv_3x3), which is *not* the NB201 op order. NCP's code has no
NB201 conversion (only the pickle is shipped), so the order was determined
from the data (``tests/test_nats_nb201.py`` re-checks it):

* parameter-free ops = slots 0, 1, 2 (all 729 cells with only these have the
  minimum ``Params``); slot 3 adds one 1x1 conv (+0.028 M params,
  +3.93 M FLOPs per edge), slot 4 one 3x3 conv (+0.243 M, +35.39 M);
* slot 1 = ``none`` and the edge order is NB201's (or its input/output
  mirror image): the cells at chance accuracy (100/120 %) are, up to 4 records, exactly
  those whose output node is disconnected from the input under this reading;
  no other edge permutation / ``none`` slot comes close;
* slot 2 = skip_connect, slot 0 = avg_pool_3x3, and NB201 order rather than
  its mirror image: 5 of 9 ImageNet16-120 accuracies listed in NASLib's
  ``naslib/data/zc_nasbench201.json`` (automl/NASLib, keys converted with
  ``naslib/search_spaces/nasbench201/conversions.py``) equal the pickle's
  ``Acc`` exactly under this reading, and none under the other readings.

Network and cost model: :meth:`NASBench201Space.build` is the standalone NB201
network (:class:`~nasbench.ops.nas_bench_201.NB201Network`, the reference
``TinyNetwork``: stem 3x3 conv, 3 stages of ``eval_cells_per_stage`` (5) cells
at ``init_channels`` (16) x 1/2/4, ResNet reduction blocks between stages,
BN+ReLU, global pooling, linear classifier). :meth:`NASBench201Space.flops` /
:meth:`params` count it analytically (per-edge op cost summed over the 3N
cells), equal to the built network's conv + linear MACs and parameter count
(``tests/test_nb201_network.py``). FLOPs are MACs of convolutions and the
classifier (no BN, pooling, biases or additions); params include BN affine
parameters and the classifier bias. With the defaults (``input_size=32``,
``num_classes=100``: the CIFAR-100 network) they reproduce NCP's
``Flops``/``Params`` (millions, rounded to 2 and 3 decimals) for 15,475 of the
15,625 records; each of the other 150 is off by exactly one conv edge (1x1:
3.93 M MACs / 28,000 params; 3x3: 35.39 M / 243,040), in either direction.
NCP's ``Acc`` is an ImageNet16-120 accuracy while its cost columns are those of
the CIFAR-100 network; at ImageNet16-120's own setting (``input_size=16,
num_classes=120``) no record matches (e.g. the cheapest cell: 1.95 M MACs, 80,456 params).
"""
from __future__ import annotations

import numpy as np

from ..errors import ArchError
from ..registry import SPACES
from .base import SearchSpace, short_repr

#: NB201 operation names, indexed by gene value.
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: Edges ``(to_node, from_node)`` in gene order (NB201 arch-string order).
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
#: Slot order of each 5-block in NCP's 30-d one-hot embedding (verified from data; see module doc).
EMBED_OPS = ("avg_pool_3x3", "none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3")
#: gene value (NB201 op index) -> slot in the embedding block, and back.
_GENE_TO_SLOT = np.array([EMBED_OPS.index(o) for o in OPS])
_SLOT_TO_GENE = np.array([OPS.index(o) for o in EMBED_OPS])

NUM_EDGES = len(EDGES)
NUM_OPS = len(OPS)
EMBED_DIM = NUM_EDGES * NUM_OPS

#: NB201 macro skeleton: stem channels, cells per stage, stage channels.
STEM_CHANNELS = 16
CELLS_PER_STAGE = 5
STAGE_CHANNELS = (16, 32, 64)


@SPACES.register("nas_bench_201")
class NASBench201Space(SearchSpace):
    """NAS-Bench-201 cells: 6 genes (edges), each an op index in 0..4 (see :data:`OPS`).

    Args:
        variant: ``"imagenet16_120"``, ``"cifar10"``, ``"cifar100"`` or None/``""``;
            only names the space (the cell space is the same).
        num_classes: classifier outputs used by :meth:`flops`/:meth:`params`
            (default 100, the convention of NCP's ``Flops``/``Params``; see module doc).
        input_size: input side length in pixels used by :meth:`flops` (default 32).

    Raises:
        ArchError: unknown variant, malformed arch strings, out-of-range genes.
    """

    name = "nas_bench_201"

    def __init__(self, variant: str | None = None, num_classes: int = 100, input_size: int = 32,
                 init_channels: int = STEM_CHANNELS, eval_cells_per_stage: int = CELLS_PER_STAGE):
        if variant not in (None, "", "imagenet16_120", "cifar10", "cifar100"):
            raise ArchError(f"nas_bench_201: unknown variant {variant!r}; use imagenet16_120, cifar10 or cifar100")
        self.variant = variant or "imagenet16_120"
        self.name = f"nas_bench_201/{self.variant}"
        self.num_classes = int(num_classes)
        self.input_size = int(input_size)
        if self.input_size % 4 or self.input_size <= 0:
            raise ArchError(f"{self.name}: input_size {input_size} must be a positive multiple of 4")
        self.init_channels, self.eval_cells_per_stage = int(init_channels), int(eval_cells_per_stage)
        if self.init_channels <= 0 or self.eval_cells_per_stage <= 0:
            raise ArchError(f"{self.name}: init_channels and eval_cells_per_stage must be positive, got "
                            f"{init_channels}, {eval_cells_per_stage}")
        # per-edge cost of one op summed over all 3 N cells, and the op-independent base
        hw = [(self.input_size >> s) ** 2 for s in range(3)]
        c0, n = self.init_channels, self.eval_cells_per_stage
        c = (c0, 2 * c0, 4 * c0)
        self._edge_flops = np.zeros(NUM_OPS, dtype=np.int64)
        self._edge_params = np.zeros(NUM_OPS, dtype=np.int64)
        for op, kk in (("nor_conv_1x1", 1), ("nor_conv_3x3", 9)):  # ReLU-conv(kxk, no bias)-BN on C channels
            self._edge_flops[OPS.index(op)] = n * sum(ci * ci * kk * h for ci, h in zip(c, hw))
            self._edge_params[OPS.index(op)] = n * sum(ci * ci * kk + 2 * ci for ci in c)
        flops = 3 * c0 * 9 * hw[0]
        params = 3 * c0 * 9 + 2 * c0
        for s in (1, 2):  # ResNet basic block, stride 2: conv_a 3x3 s2, conv_b 3x3, downsample avgpool + 1x1
            cin, cout = c[s - 1], c[s]
            flops += (cin * cout * 9 + cout * cout * 9 + cin * cout) * hw[s]
            params += cin * cout * 9 + 2 * cout + cout * cout * 9 + 2 * cout + cin * cout
        flops += c[-1] * self.num_classes
        params += 2 * c[-1] + c[-1] * self.num_classes + self.num_classes  # last BN, classifier
        self.base_flops, self.base_params = int(flops), int(params)

    # -- genes ----------------------------------------------------------------
    @property
    def num_genes(self) -> int:
        return NUM_EDGES

    def choices(self, i: int):
        if not 0 <= int(i) < NUM_EDGES:
            raise IndexError(f"{self.name}: gene index {i} out of range 0..{NUM_EDGES - 1}")
        return tuple(range(NUM_OPS))

    # -- keys -----------------------------------------------------------------
    def encode(self, arch) -> str:
        """Architecture -> NB201 arch string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
        arch = self.validate(arch)
        nodes, g = [], 0
        for i in (1, 2, 3):
            nodes.append("|" + "|".join(f"{OPS[arch[g + j]]}~{j}" for j in range(i)) + "|")
            g += i
        return "+".join(nodes)

    def decode(self, key) -> tuple:
        """NB201 arch string -> tuple of 6 op indices (NB201 edge order).

        Accepts the plain string and the ``Structure(4 nodes with ...)`` repr
        of the NB201 API.

        Raises:
            ArchError: wrong number of nodes or edges, an unknown op name, or an
                edge whose source index is not the expected ``0..i-1`` (the message names
                the key and the bad part).
        """
        if not isinstance(key, str):
            raise ArchError(f"{self.name}: key {short_repr(key)} must be an arch string like "
                            "'|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|'")
        s = key.strip()
        if s.startswith("Structure(") and s.endswith(")") and " with " in s:
            s = s[s.index(" with ") + len(" with "):-1].strip()
        nodes = s.split("+")
        if len(nodes) != 3:
            raise ArchError(f"{self.name}: key {short_repr(key)} must have 3 '+'-separated nodes, got {len(nodes)}")
        arch = []
        for i, node in enumerate(nodes, start=1):
            if len(node) < 2 or node[0] != "|" or node[-1] != "|":
                raise ArchError(f"{self.name}: key {short_repr(key)}: node {i} {node!r} must be enclosed in '|'")
            edges = node[1:-1].split("|")
            if len(edges) != i:
                raise ArchError(f"{self.name}: key {short_repr(key)}: node {i} must have {i} input edges, got {len(edges)}")
            for j, e in enumerate(edges):
                op, sep, src = e.partition("~")
                if not sep or src != str(j):
                    raise ArchError(f"{self.name}: key {short_repr(key)}: edge {e!r} of node {i} must be 'op~{j}'")
                if op not in OPS:
                    raise ArchError(f"{self.name}: key {short_repr(key)}: unknown op {op!r}; allowed ops are {list(OPS)}")
                arch.append(OPS.index(op))
        return tuple(arch)

    # -- embeddings -------------------------------------------------------------
    def one_hot(self, arch) -> np.ndarray:
        """``float32[30]`` one-hot embedding in NCP's layout (6 edge blocks, slots :data:`EMBED_OPS`)."""
        arch = np.asarray(self.validate(arch))
        vec = np.zeros((NUM_EDGES, NUM_OPS), dtype=np.float32)
        vec[np.arange(NUM_EDGES), _GENE_TO_SLOT[arch]] = 1.0
        return vec.reshape(-1)

    def from_one_hot(self, vec) -> tuple:
        """Project any real 30-vector in NCP's layout to a legal cell (argmax per edge block).

        Ties go to the first slot of the block. Raises :class:`ArchError` for a
        vector that does not have 30 finite entries.
        """
        v = np.asarray(vec, dtype=np.float64)
        if v.size != EMBED_DIM:
            raise ArchError(f"{self.name}: embedding has {v.size} entries, expected {EMBED_DIM} "
                            f"({NUM_EDGES} edges x {NUM_OPS} ops)")
        if not np.all(np.isfinite(v)):
            raise ArchError(f"{self.name}: embedding has non-finite entries")
        slots = v.reshape(NUM_EDGES, NUM_OPS).argmax(axis=1)
        return tuple(int(g) for g in _SLOT_TO_GENE[slots])

    # -- cost -------------------------------------------------------------------
    def flops(self, arch) -> int:
        """MACs of one forward pass (convs + classifier) at ``input_size``, ``num_classes``."""
        arch = self.validate(arch)
        return int(self.base_flops + sum(int(self._edge_flops[a]) for a in arch))

    def params(self, arch) -> int:
        """Parameters (conv, BN affine, classifier) of the NB201 network with ``num_classes``."""
        arch = self.validate(arch)
        return int(self.base_params + sum(int(self._edge_params[a]) for a in arch))

    def build(self, arch, num_classes: int | None = None):
        """Standalone NAS-Bench-201 network of ``arch``
        (:class:`~nasbench.ops.nas_bench_201.NB201Network`, the reference ``TinyNetwork``):
        width ``init_channels``, ``eval_cells_per_stage`` cells per stage, ``num_classes`` outputs
        (default the space's). Its conv + linear MACs at ``input_size`` and its parameter count
        equal :meth:`flops` and :meth:`params` (``tests/test_nb201_darts.py``).

        Raises:
            ArchError: an illegal architecture.
        """
        from ..ops.nas_bench_201 import NB201Network
        arch = self.validate(arch)
        nodes = [[(OPS[arch[g]], j) for g, (to, j) in enumerate(EDGES) if to == i] for i in (1, 2, 3)]
        return NB201Network(nodes, C=self.init_channels, N=self.eval_cells_per_stage,
                            num_classes=self.num_classes if num_classes is None else int(num_classes))

    def cost(self, arch) -> tuple[int, int]:
        """``(flops, params)`` of :meth:`build`'s network (analytic, see :meth:`flops`, :meth:`params`)."""
        return self.flops(arch), self.params(arch)


__all__ = ["NASBench201Space", "OPS", "EDGES", "EMBED_OPS", "EMBED_DIM"]
