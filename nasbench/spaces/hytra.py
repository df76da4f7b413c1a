"""HyTra: the hybrid CNN-transformer search space of BossNAS, and its BossNet-T networks.

Source: changlin31/BossNAS, ``searching/bossnas/models/supernets/hytra_supernet.py``
(ops and scales), ``searching/bossnas/models/utils/hytra_paths.py``
(``restricted_path``), ``searching/bossnas/hooks/val_hook.py`` (the next
block's depth), ``retraining_hytra/boss_models.py`` (BossNet-T, the
retraining network) and the README table; paper "BossNAS: Exploring Hybrid
CNN-transformers with Block-wisely Self-supervised Neural Architecture
Search" (ICCV'21). METHODS.md section 3.

The space
---------
A ResNet stem (conv7x7 s2 3->64 + BN + act + maxpool 3x3 s2) gives a 56x56
map (at 224x224 input), then 16 searchable layers in 4 blocks of 4. Each
layer is one of six operators, named by type and by the feature-map side it
works at for a 224x224 input ("scale"):

    0 ResAtt@7   1 ResConv@7   2 ResAtt@14   3 ResConv@14   4 ResConv@28   5 ResConv@56

A layer's scale equals the previous layer's or is half of it (the operator
then takes its input through its stride-2 branch, so the down-sampling
positions are searched); the first layer follows the stem's 56. Attention
only exists at 14 and 7. Output channels are 256 / 512 / 1024 / 2048 at
56 / 28 / 14 / 7.

The reference lists the candidate paths of a block per "depth" ``d`` = the
number of scales still reachable = 4, 3, 2, 1 for a block input at 56, 28, 14,
7 (``restricted_path[d]``, 51 / 99 / 80 / 16 paths): the paths whose first
operator is at the input's scale or half of it. Block 0 has depth 4; after a
block is chosen the next block's depth is ``1 + scale index`` of its last
operator (``ValBestPathHook``: ops 0, 1 -> 1; 2, 3 -> 2; 4 -> 3; 5 -> 4).
:func:`candidate_paths` regenerates these lists in the reference's order
(nested loops over the scale of each position, smallest scale first, each
next scale the same or one halving, then nested loops over the operators at
those scales; keep the paths whose first scale is allowed). Chaining the
blocks, the space is every 16-operator sequence of the rule above:
1,703,991 architectures.

The reference *supernet* only instantiates, per block, the operators of its
``stage_depths = [4, 3, 2, 2]`` first scales, without a stride-2 branch for
the largest of them, so its blocks 1 and 2 cannot take a 56x56 or 28x28 input
although the candidate lists above offer such paths; the only architectures
of this space it cannot run are those whose block 0 ends at 56 or block 1 at
28 (:meth:`HyTraSpace.fits_reference_supernet`). :meth:`HyTraSpace.build_supernet`
gives BossNAS's block-wise siamese supernet
(:mod:`nasbench.supernets.bossnas_hytra`), which has every operator at every
scale reachable at a layer, so it runs every candidate path; the block-wise
protocol (``block_candidates``: the candidates after the chosen earlier blocks,
``sample_block_paths``: ``train_paths`` random candidates per step) is what
``algorithm.type: bossnas`` asks.

Architectures and keys
----------------------
An architecture is a tuple of 18 ints: the 16 operator indices (block by
block) and two network-variant genes that the search does not change:

* gene 16 ``se``: 1 = SiLU activations and SE in every ResConv (BossNet-T),
  0 = ReLU and no SE (the reference's ``bossnet_T0_nose``, "w/o SE");
* gene 17 ``last_stride``: stride of the last stage, 2 (7x7 output) or 1
  (BossNet-T1: the 7-scale layers run at 14x14).

Keys are the four block paths joined by ``-`` plus the variant flags, e.g.
``"5433-3230-0010-0000_se_s2"`` (BossNet-T0); :meth:`HyTraSpace.decode` also
accepts a key without flags (the space's defaults fill them), the names of
:data:`NAMED_ARCHS` (``"BossNet-T0"``, ``"BossNet-T0-nose"``, ``"BossNet-T1"``;
case and ``_``/``-`` are ignored, so the reference's ``bossnet_T0_nose``
works), and :meth:`HyTraSpace.validate` takes 16 or 18 ints or the
reference's list of four block paths.

The network (``build``)
-----------------------
BossNet-T as the reference retrains it: per resolution stage 56, 28, 14, 7
(bottleneck widths 64, 128, 256, 512; attention heads 1, 2, 4, 8 of 64
channels), the layers of that scale in order; the first layer of stages 28,
14 and 7 has stride 2, which its PEG carries (:mod:`nasbench.ops.hytra`); the
head is global average pooling + ``Linear(2048, num_classes)``. The
reference's encoding of it, one list per stage with 0 = ResAtt and 1 =
ResConv, is :meth:`HyTraSpace.stage_encoding`; BossNet-T0 is
``[[1], [1], [1, 1, 1, 0, 1], [0, 0, 0, 1, 0, 0, 0, 0, 0]]``. Drop path
(``drop_path_rate``) grows linearly with the layer index over the 16 layers
and applies to ResConv layers only, as in the reference.

Where a stage has no layers the reference puts a conv3x3 stride 2 + BN + act
transition there. For a trailing empty stage (the last operator is at 14 or
larger) this is done here too, with the stage's stride. For an empty *first*
stage (block 0 starts at 28) the reference's transition would add a down-sampling
the search space does not have, putting every later layer at half its scale,
so here the stage is empty and the first 28-scale layer down-samples the stem's
output itself. The BossNet-T models have no empty stage.

Cost convention
---------------
``flops`` are MACs for one ``image_size`` image of every conv and linear
layer plus the two attention matrix products (``q^T k`` and ``v attn^T``, ``2
N^2 d`` per attention layer); BN, activations, softmax, SE gating, pooling,
biases and residual additions are not counted (:func:`nasbench.ops.hytra.count_hytra_macs`).
``params`` count every parameter (BN affine, conv and classifier biases
included). BossNet-T0 / T0 w/o SE / T1 have 38,415,960 / 37,319,080 /
38,415,960 parameters, equal to the reference modules. MACs: T0 at 224
3.443B, T0 w/o SE at 224 3.442B, T0 at 288 ("T0^") 5.732B, T1 at 224 7.944B,
T1 at 256 ("T1^") 10.509B, i.e. the README's 3.4B / 3.4B / 5.7B / 7.9B /
10.5B. Conv + linear alone would give 5.62B for T0^ and 7.61B for T1: the
README counts the attention products.
"""
from __future__ import annotations

import itertools
import re
from functools import lru_cache

import numpy as np
import torch
import torch.nn as nn

from ..errors import ArchError
from ..ops.hytra import ResAtt, ResConv, count_hytra_macs, init_weights
from ..registry import SPACES
from .base import SearchSpace

#: operator index -> (type, scale at 224x224 input)
OPS = (("ResAtt", 7), ("ResConv", 7), ("ResAtt", 14), ("ResConv", 14), ("ResConv", 28), ("ResConv", 56))
OP_NAMES = tuple(f"{t}@{s}" for t, s in OPS)
#: feature-map sides of the four scales, indexed by scale index (depth = scale index + 1)
SCALES = (7, 14, 28, 56)
#: operators at each scale index, ascending (the reference's ``s_rank``)
OPS_AT_SCALE = tuple(tuple(i for i, (_, s) in enumerate(OPS) if s == side) for side in SCALES)
#: scale index of each operator
OP_SCALE = tuple(SCALES.index(s) for _, s in OPS)
NUM_BLOCKS, BLOCK_LAYERS = 4, 4
NUM_LAYERS = NUM_BLOCKS * BLOCK_LAYERS
#: scale index of the stem's output (56x56), the input of block 0
STEM_SCALE = 3
STEM_CHANNELS = 64
#: per resolution stage 56, 28, 14, 7: bottleneck width (output = 4x) and attention heads
STAGE_PLANES = (64, 128, 256, 512)
STAGE_HEADS = (1, 2, 4, 8)
EXPANSION = 4
NUM_FEATURES = STAGE_PLANES[-1] * EXPANSION
INPUT_SIZE = 224
#: number of candidate paths per depth in the reference's ``restricted_path``
NUM_CANDIDATES = {4: 51, 3: 99, 2: 80, 1: 16}

#: BossNet-T0's four block paths (its retraining encoding mapped to operators)
BOSSNET_T0_PATHS = ((5, 4, 3, 3), (3, 2, 3, 0), (0, 0, 1, 0), (0, 0, 0, 0))
_T0_OPS = tuple(itertools.chain.from_iterable(BOSSNET_T0_PATHS))
#: named architectures: the reference's ``bossnet_T0`` (SiLU + SE), ``bossnet_T0_nose``
#: (ReLU, no SE) and ``bossnet_T1`` (``bossnet_T0`` with last stride 1)
NAMED_ARCHS = {
    "BossNet-T0": _T0_OPS + (1, 2),
    "BossNet-T0-nose": _T0_OPS + (0, 2),
    "BossNet-T1": _T0_OPS + (1, 1),
}
#: the reference README's MAdds, per (named architecture, input side): T0 w/o SE, T0, T0^ (T0 at 288),
#: T1, T1^ (T1 at 256), as ``boss_madds.py`` configures them
README_MADDS = {
    ("BossNet-T0-nose", 224): 3.4e9,
    ("BossNet-T0", 224): 3.4e9,
    ("BossNet-T0", 288): 5.7e9,
    ("BossNet-T1", 224): 7.9e9,
    ("BossNet-T1", 256): 10.5e9,
}

_NAME_KEYS = {n.lower().replace("_", "-"): n for n in NAMED_ARCHS}
_KEY = re.compile(r"^(\d{4})-(\d{4})-(\d{4})-(\d{4})((?:_[A-Za-z0-9]+)*)$")


# ----------------------------------------------------------------------------- path lists
def depth_of_scale(side: int) -> int:
    """Depth (1..4) of a block whose input is ``side`` x ``side`` (7, 14, 28, 56) at 224 input."""
    if side not in SCALES:
        raise ArchError(f"hytra: no scale {side!r}; the scales are {list(SCALES)}")
    return SCALES.index(side) + 1


def next_depth(path) -> int:
    """Depth of the block after ``path``: ``1 +`` the scale index of its last operator.

    Operators 0, 1 -> 1; 2, 3 -> 2; 4 -> 3; 5 -> 4 (the reference's ``ValBestPathHook``).
    """
    return OP_SCALE[int(path[-1])] + 1


def _scale_sequences(first: int, n: int):
    """Scale-index sequences of length ``n`` starting at ``first``, each next the same or one smaller.

    Yielded in ascending lexicographic order (the reference's nested loops).
    """
    if n == 1:
        yield (first,)
        return
    for nxt in sorted({max(first - 1, 0), first}):
        for rest in _scale_sequences(nxt, n - 1):
            yield (first,) + rest


@lru_cache(maxsize=None)
def paths_of_depth(depth: int) -> tuple:
    """The reference's ``restricted_path[depth]``: candidate 4-operator paths, in its order.

    A path's first operator is at the block input's scale (index ``depth - 1``)
    or one halving below it; every later operator at the previous one's scale
    or one halving below. Ordered by scale sequence (lexicographic over scale
    indices, smallest scale first) and then by operators.
    """
    if depth not in NUM_CANDIDATES:
        raise ArchError(f"hytra: depth must be 1..4, got {depth!r}")
    firsts = {depth - 1, max(depth - 2, 0)}
    out = []
    for first in range(len(SCALES)):
        if first not in firsts:
            continue
        for seq in _scale_sequences(first, BLOCK_LAYERS):
            out.extend(itertools.product(*(OPS_AT_SCALE[s] for s in seq)))
    return tuple(out)


def candidate_paths(block: int, in_scale: int | None = None) -> list[tuple]:
    """Candidate paths of ``block`` (0..3) for an input of side ``in_scale`` (7, 14, 28, 56).

    Block 0's input is always the stem's 56 (``in_scale`` may be omitted);
    later blocks need the scale the previous block ends at. Returns the
    reference's ``restricted_path[depth]`` list (51 / 99 / 80 / 16 paths for
    56 / 28 / 14 / 7), in its order, as tuples of operator indices.

    Raises:
        ArchError: bad block, a missing or unknown scale, or block 0 not at 56.
    """
    if block not in range(NUM_BLOCKS):
        raise ArchError(f"hytra: block must be 0..{NUM_BLOCKS - 1}, got {block!r}")
    if in_scale is None:
        if block != 0:
            raise ArchError(f"hytra: block {block}'s candidates depend on its input scale; pass in_scale")
        in_scale = SCALES[STEM_SCALE]
    if block == 0 and in_scale != SCALES[STEM_SCALE]:
        raise ArchError(f"hytra: block 0's input is the stem's {SCALES[STEM_SCALE]}x{SCALES[STEM_SCALE]} map, "
                        f"got in_scale={in_scale!r}")
    return list(paths_of_depth(depth_of_scale(in_scale)))


# ----------------------------------------------------------------------------- network
def stage_plan(stages, last_stride: int = 2) -> list[list[tuple]]:
    """Layer specifications of the network of a retraining encoding.

    ``stages``: four lists (resolution stages 56, 28, 14, 7) of 0 (ResAtt) /
    1 (ResConv). Returns per stage a list of ``(kind, inp, planes, stride,
    heads, layer_index)``, kind ``"att"``, ``"conv"`` or ``"transition"`` (an
    empty stage after the first: conv3x3 with the stage's stride, ``inp ->
    4 * planes``); ``layer_index`` counts the searchable layers (None for
    transitions). An empty first stage has no module (see module doc).
    """
    out, inp, idx = [], STEM_CHANNELS, 0
    for k, layers in enumerate(stages):
        stride = 1 if k == 0 else (int(last_stride) if k == len(stages) - 1 else 2)
        planes, heads, specs = STAGE_PLANES[k], STAGE_HEADS[k], []
        if not layers:
            if k > 0:
                specs.append(("transition", inp, planes, stride, None, None))
                inp = planes * EXPANSION
        for j, t in enumerate(layers):
            specs.append(("att" if t == 0 else "conv", inp, planes, stride if j == 0 else 1, heads, idx))
            inp, idx = planes * EXPANSION, idx + 1
        out.append(specs)
    return out


def make_layer(spec, se: bool, drop_path: float = 0.0) -> nn.Module:
    """The module of one :func:`stage_plan` entry (SiLU + SE in ResConv when ``se``, else ReLU)."""
    kind, inp, planes, stride, heads, _ = spec
    act = nn.SiLU if se else nn.ReLU
    if kind == "conv":
        return ResConv(inp, planes, stride, act=act, se=se, drop_path=drop_path)
    if kind == "att":
        return ResAtt(inp, planes * EXPANSION, heads, stride, act=act)
    oup = planes * EXPANSION
    return nn.Sequential(nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup), act(inplace=True))


class BossNet(nn.Module):
    """BossNet-T network of a retraining encoding.

    ``[N, 3, H, W]`` (224 for ImageNet) -> logits ``[N, num_classes]``.
    Modules follow the reference (``conv1``, ``bn1``, ``act1``, ``maxpool``,
    ``layer1``..``layer4``, ``fc``), so its checkpoints load.

    Args:
        stages: four lists (stages 56, 28, 14, 7) of 0 = ResAtt, 1 = ResConv.
        se: SiLU + SE in ResConv layers (True) or ReLU without SE (False).
        last_stride: stride of the last stage (2, or 1 for BossNet-T1).
        num_classes: classifier outputs.
        drop_path_rate: stochastic depth of ResConv layer ``i`` is ``rate * i / 15``.
        dropout: dropout before the classifier.
    """

    def __init__(self, stages, se: bool = True, last_stride: int = 2, num_classes: int = 1000,
                 drop_path_rate: float = 0.0, dropout: float = 0.0):
        super().__init__()
        act = nn.SiLU if se else nn.ReLU
        self.stages = [list(s) for s in stages]
        self.conv1 = nn.Conv2d(3, STEM_CHANNELS, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(STEM_CHANNELS)
        self.act1 = act(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for k, specs in enumerate(stage_plan(stages, last_stride)):
            layers = [make_layer(s, se, drop_path_rate * s[5] / (NUM_LAYERS - 1) if s[5] is not None else 0.0)
                      for s in specs]
            self.add_module(f"layer{k + 1}", nn.Sequential(*layers))
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(NUM_FEATURES, num_classes)
        init_weights(self)

    def forward_features(self, x):
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x):
        return self.fc(self.dropout(self.global_pool(self.forward_features(x)).flatten(1)))


def _half(side: int) -> int:
    return (side + 1) // 2  # every stride-2 module here (k3 p1 conv, k3 p1 max pool, 2x2 ceil avg pool)


# ----------------------------------------------------------------------------- space
@SPACES.register("hytra")
class HyTraSpace(SearchSpace):
    """HyTra (BossNAS): 16 operator genes in 4 blocks of 4 plus 2 network-variant genes.

    See the module docstring for the space, the key format
    (``"5433-3230-0010-0000_se_s2"``), the network and the cost convention.
    ``sample`` is uniform over the 1,703,991 operator sequences; ``mutate``
    and ``crossover`` work per block and repair later blocks that the change
    made illegal; all three keep the variant genes (``sample`` uses the
    space's defaults).

    Args:
        variant: None, ``""`` or ``"imagenet"`` (the only data set of the space).
        num_classes: classifier outputs (1000).
        image_size: input side for :meth:`flops` (224).
        se: default of gene 16 for keys without flags and for ``sample`` (True: SiLU + SE).
        last_stride: default of gene 17 (2).
        drop_path_rate: stochastic depth of built networks (reference retraining: 0.1).
        dropout: dropout before the classifier of built networks (reference: 0).
        archs: names or keys of architectures of interest (e.g. the ones a
            config retrains); validated here, available as ``space.archs``.
        train_paths: candidate paths drawn (without replacement) per BossNAS training step
            (the reference's ``RandomPathHook``: 4).
        supernet_width: width multiplier of the BossNAS supernet's channels (1 = the paper's;
            smaller only for smoke tests); built networks are unaffected.
        projector_hidden, projection_dim: widths of the supernet's per-block projector and
            predictor MLPs (4096, 256 in the reference).
    Raises:
        ArchError: unknown variant, bad defaults, or an illegal entry of ``archs``.
    """

    name = "hytra"
    family = "blockwise"  # BossNAS's block-wise siamese supernet (build_supernet)
    num_blocks = NUM_BLOCKS
    benchmark = None
    input_size = INPUT_SIZE
    named_archs = NAMED_ARCHS

    def named_architectures(self) -> dict:
        """BossNet-T0, BossNet-T0-nose and BossNet-T1 (``--arch`` of the tools accepts the names)."""
        return dict(NAMED_ARCHS)

    def __init__(self, variant: str | None = None, num_classes: int = 1000, image_size: int = INPUT_SIZE,
                 se: bool = True, last_stride: int = 2, drop_path_rate: float = 0.0, dropout: float = 0.0,
                 archs=None, train_paths: int = 4, supernet_width: float = 1.0, projector_hidden: int = 4096,
                 projection_dim: int = 256):
        if variant not in (None, "", "imagenet"):
            raise ArchError(f"{self.name}: unknown variant {variant!r}; the space has only 'imagenet'")
        if int(last_stride) not in (1, 2):
            raise ArchError(f"{self.name}: last_stride must be 1 or 2, got {last_stride!r}")
        self.num_classes = int(num_classes)
        self.input_size = int(image_size)
        self.default_variant = (int(bool(se)), int(last_stride))
        self.drop_path_rate = float(drop_path_rate)
        self.dropout = float(dropout)
        self._macs: dict = {}
        self._params: dict = {}
        self.archs = {str(a): self.validate(a) for a in (archs or [])}
        self.train_paths = int(train_paths)
        self.supernet_width = float(supernet_width)
        self.projector_hidden, self.projection_dim = int(projector_hidden), int(projection_dim)
        if self.train_paths < 1 or not 0 < self.supernet_width <= 1 or self.projector_hidden < 1 \
                or self.projection_dim < 1:
            raise ArchError(f"{self.name}: train_paths, projector_hidden and projection_dim must be positive and "
                            f"supernet_width in (0, 1], got {train_paths!r}, {projector_hidden!r}, "
                            f"{projection_dim!r}, {supernet_width!r}")

    # -- genes ----------------------------------------------------------------
    @property
    def num_genes(self) -> int:
        return NUM_LAYERS + 2

    def choices(self, i: int):
        """Gene ``i``'s values: operators 0..5 (which are legal depends on the previous layer), se, last stride."""
        if i < NUM_LAYERS:
            return tuple(range(len(OPS)))
        return (0, 1) if i == NUM_LAYERS else (1, 2)

    @staticmethod
    def _layer_error(ops, i: int) -> str | None:
        """Why operator ``i`` of ``ops`` breaks the scale rule, or None."""
        prev = STEM_SCALE if i == 0 else OP_SCALE[ops[i - 1]]
        if OP_SCALE[ops[i]] in (prev, prev - 1):
            return None
        allowed = [o for o in range(len(OPS)) if OP_SCALE[o] in (prev, prev - 1)]
        after = (f"the stem's {SCALES[STEM_SCALE]}x{SCALES[STEM_SCALE]} map" if i == 0
                 else f"layer {i - 1}'s {OP_NAMES[ops[i - 1]]}")
        return (f"layer {i} (block {i // BLOCK_LAYERS}, position {i % BLOCK_LAYERS}) is op {ops[i]} "
                f"({OP_NAMES[ops[i]]}), but after {after} a layer must stay at {SCALES[prev]}"
                f"{' or halve it' if prev else ''}; "
                f"allowed ops: {', '.join(f'{o} ({OP_NAMES[o]})' for o in allowed)}")

    def validate(self, arch) -> tuple:
        """Return ``arch`` as an 18-int tuple, or raise :class:`ArchError` naming the bad position.

        Accepts a key or name (:meth:`decode`), 16 or 18 ints (16: the
        space's default variant genes are appended) or four block paths of 4
        ints (the reference's ``best_paths`` list).
        """
        if isinstance(arch, str):
            return self.decode(arch)
        try:
            items = list(arch)
        except TypeError:
            raise ArchError(f"{self.name}: architecture {arch!r} is not a sequence of ints") from None
        if len(items) == NUM_BLOCKS and all(isinstance(b, (list, tuple)) for b in items):
            if any(len(b) != BLOCK_LAYERS for b in items):
                raise ArchError(f"{self.name}: block paths {arch!r} must have {BLOCK_LAYERS} operators each")
            items = list(itertools.chain.from_iterable(items))
        try:
            genes = tuple(int(a) for a in items)
        except (TypeError, ValueError):
            raise ArchError(f"{self.name}: architecture {arch!r} is not a sequence of ints") from None
        if len(genes) == NUM_LAYERS:
            genes += self.default_variant
        if len(genes) != self.num_genes:
            raise ArchError(f"{self.name}: architecture {arch!r} has {len(genes)} genes, expected "
                            f"{NUM_LAYERS} operators (+ 2 variant genes)")
        for i, g in enumerate(genes[:NUM_LAYERS]):
            if g not in self.choices(i):
                raise ArchError(f"{self.name}: layer {i} (block {i // BLOCK_LAYERS}, position {i % BLOCK_LAYERS}) "
                                f"of {genes!r} is {g}, allowed operators are 0..5 ({', '.join(OP_NAMES)})")
            err = self._layer_error(genes, i)
            if err:
                raise ArchError(f"{self.name}: {err}")
        if genes[NUM_LAYERS] not in (0, 1):
            raise ArchError(f"{self.name}: gene {NUM_LAYERS} (se) of {genes!r} is {genes[NUM_LAYERS]}, "
                            "allowed 0 (ReLU, no SE) or 1 (SiLU + SE)")
        if genes[NUM_LAYERS + 1] not in (1, 2):
            raise ArchError(f"{self.name}: gene {NUM_LAYERS + 1} (last_stride) of {genes!r} is "
                            f"{genes[NUM_LAYERS + 1]}, allowed 1 or 2")
        return genes

    # -- keys -----------------------------------------------------------------
    def encode(self, arch) -> str:
        """Architecture -> key, e.g. ``"5433-3230-0010-0000_se_s2"`` (BossNet-T0)."""
        g = self.validate(arch)
        blocks = "-".join("".join(str(o) for o in p) for p in self.block_paths(g))
        return f"{blocks}_{'se' if g[NUM_LAYERS] else 'nose'}_s{g[NUM_LAYERS + 1]}"

    def decode(self, key) -> tuple:
        """Key or name -> 18-int architecture tuple.

        ``"5433-3230-0010-0000"`` with optional flags ``_se`` / ``_nose`` and
        ``_s2`` / ``_s1`` (missing ones: the space's defaults), or a name of
        :data:`NAMED_ARCHS` (case-insensitive, ``_`` = ``-``).

        Raises:
            ArchError: unparsable key or unknown flag (the message quotes it),
                or an illegal architecture (:meth:`validate`).
        """
        text = str(key).strip()
        name = _NAME_KEYS.get(text.lower().replace("_", "-"))
        if name is not None:
            return NAMED_ARCHS[name]
        m = _KEY.match(text)
        if not m:
            raise ArchError(f"{self.name}: cannot parse architecture key {key!r}; expected four 4-digit block "
                            f"paths such as '5433-3230-0010-0000_se_s2' or one of {sorted(NAMED_ARCHS)}")
        se, stride = self.default_variant
        for flag in filter(None, m.group(5).split("_")):
            f = flag.lower()
            if f in ("se", "nose"):
                se = int(f == "se")
            elif f in ("s1", "s2"):
                stride = int(f[1])
            else:
                raise ArchError(f"{self.name}: unknown flag {flag!r} in key {key!r}; flags are se, nose, s1, s2")
        ops = tuple(int(c) for c in "".join(m.group(1, 2, 3, 4)))
        return self.validate(ops + (se, stride))

    # -- structure ------------------------------------------------------------
    def block_paths(self, arch) -> list[tuple]:
        """The four block paths (4 operators each) of ``arch``."""
        g = self.validate(arch)
        return [tuple(g[b * BLOCK_LAYERS:(b + 1) * BLOCK_LAYERS]) for b in range(NUM_BLOCKS)]

    def block_input_scales(self, arch) -> list[int]:
        """Input side (at 224 input) of each block: 56, then the scale each block ends at."""
        paths = self.block_paths(arch)
        return [SCALES[STEM_SCALE]] + [SCALES[OP_SCALE[p[-1]]] for p in paths[:-1]]

    def block_depths(self, arch) -> list[int]:
        """The reference's depth of each block (4 for block 0, then :func:`next_depth` of the previous path)."""
        return [depth_of_scale(s) for s in self.block_input_scales(arch)]

    candidate_paths = staticmethod(candidate_paths)

    # -- the block-wise protocol (BossNAS) -------------------------------------
    def block_keys(self, arch) -> tuple[str, ...]:
        """The four block keys of ``arch``: each block's operator indices as digits (``"5433"``)."""
        return tuple("".join(str(o) for o in p) for p in self.block_paths(arch))

    def decode_block_key(self, block: int, key) -> tuple:
        """Block key (4 digits 0..5) -> operator tuple. Raises :class:`ArchError`."""
        if block not in range(NUM_BLOCKS):
            raise ArchError(f"{self.name}: block must be 0..{NUM_BLOCKS - 1}, got {block!r}")
        if (not isinstance(key, str) or len(key) != BLOCK_LAYERS or not key.isascii() or not key.isdigit()
                or any(int(c) >= len(OPS) for c in key)):
            raise ArchError(f"{self.name}: block {block} key {key!r} must be {BLOCK_LAYERS} operator digits 0..5 "
                            f"({', '.join(f'{i}={n}' for i, n in enumerate(OP_NAMES))})")
        return tuple(int(c) for c in key)

    def arch_from_block_keys(self, keys) -> tuple:
        """The architecture (default variant genes) of four block keys. Raises :class:`ArchError`."""
        keys = list(keys)
        if len(keys) != NUM_BLOCKS:
            raise ArchError(f"{self.name}: {len(keys)} block keys {keys!r}, expected {NUM_BLOCKS}")
        return self.validate(tuple(o for b, k in enumerate(keys) for o in self.decode_block_key(b, k)))

    def block_candidates(self, block: int, prefix=()) -> list[str]:
        """Keys of the candidate paths of ``block`` after the chosen keys ``prefix`` of blocks
        ``0 .. block - 1``: :func:`candidate_paths` for the scale the last of them ends at
        (depth 4 for block 0; the reference's ``ValBestPathHook`` depth rule, :func:`next_depth`).

        Raises:
            ArchError: ``prefix`` shorter than ``block`` or holding a bad key.
        """
        prefix = list(prefix)[:block]
        if len(prefix) < block:
            raise ArchError(f"{self.name}: block {block}'s candidates depend on the chosen paths of blocks "
                            f"0..{block - 1}; got {prefix!r}")
        in_scale = SCALES[STEM_SCALE]
        for b, k in enumerate(prefix):
            path = self.decode_block_key(b, k)
            if not self._path_fits(path, in_scale):
                raise ArchError(f"{self.name}: block {b} path {k!r} does not follow a {in_scale}x{in_scale} input")
            in_scale = SCALES[OP_SCALE[path[-1]]]
        return ["".join(str(o) for o in p) for p in candidate_paths(block, in_scale)]

    def sample_block_paths(self, block: int, prefix, rng: np.random.Generator) -> list[str]:
        """``train_paths`` different candidates of ``block`` (after ``prefix``), drawn uniformly
        without replacement (the reference's ``RandomPathHook``: ``random.sample(paths, 4)``)."""
        cand = self.block_candidates(block, prefix)
        idx = rng.choice(len(cand), size=min(self.train_paths, len(cand)), replace=False)
        return [cand[int(i)] for i in idx]

    def build_supernet(self):
        """The BossNAS siamese supernet :class:`~nasbench.supernets.bossnas_hytra.BossNASHyTraSupernet`."""
        from ..supernets.bossnas_hytra import BossNASHyTraSupernet
        return BossNASHyTraSupernet(self)

    def stage_encoding(self, arch) -> list[list[int]]:
        """The reference's retraining encoding: per stage 56, 28, 14, 7 the layers' types (0 ResAtt, 1 ResConv)."""
        g = self.validate(arch)
        stages = [[] for _ in SCALES]
        for o in g[:NUM_LAYERS]:
            stages[len(SCALES) - 1 - OP_SCALE[o]].append(0 if OPS[o][0] == "ResAtt" else 1)
        return stages

    def from_stage_encoding(self, stages, se: bool | None = None, last_stride: int | None = None) -> tuple:
        """Architecture of a retraining encoding (inverse of :meth:`stage_encoding`).

        Raises:
            ArchError: not 4 stages, not 16 layers, ResAtt at 56 or 28, or an
                illegal operator sequence.
        """
        if len(stages) != len(SCALES):
            raise ArchError(f"{self.name}: a stage encoding has {len(SCALES)} stages (56, 28, 14, 7), got {stages!r}")
        ops = []
        for k, layers in enumerate(stages):
            side = SCALES[len(SCALES) - 1 - k]
            for t in layers:
                kind = "ResAtt" if int(t) == 0 else "ResConv"
                if (kind, side) not in OPS:
                    raise ArchError(f"{self.name}: stage {side}x{side} of {stages!r} has a {kind}; "
                                    "ResAtt exists only at 14 and 7")
                ops.append(OPS.index((kind, side)))
        if len(ops) != NUM_LAYERS:
            raise ArchError(f"{self.name}: stage encoding {stages!r} has {len(ops)} layers, expected {NUM_LAYERS}")
        d_se, d_stride = self.default_variant
        return self.validate(tuple(ops) + (int(d_se if se is None else bool(se)),
                                           int(d_stride if last_stride is None else last_stride)))

    def fits_reference_supernet(self, arch) -> bool:
        """Whether the reference supernet (``stage_depths = [4, 3, 2, 2]``) can run ``arch``.

        False when block 0 ends at 56 or block 1 ends at 28 (the next block
        has no operator for that input); see the module docstring.
        """
        scales = self.block_input_scales(arch)
        return scales[1] <= 28 and scales[2] <= 14

    # -- enumeration and sampling ----------------------------------------------
    @staticmethod
    @lru_cache(maxsize=None)
    def _completions(layer: int, prev: int) -> int:
        """Number of legal operator sequences for layers ``layer..15`` after scale index ``prev``."""
        if layer == NUM_LAYERS:
            return 1
        return sum(len(OPS_AT_SCALE[s]) * HyTraSpace._completions(layer + 1, s) for s in {max(prev - 1, 0), prev})

    def __len__(self) -> int:
        """Number of operator sequences (1,703,991); the variant genes are not counted."""
        return self._completions(0, STEM_SCALE)

    def __iter__(self):
        """Every operator sequence in lexicographic order, with the default variant genes."""
        def rec(prefix, prev):
            if len(prefix) == NUM_LAYERS:
                yield tuple(prefix) + self.default_variant
                return
            for o in range(len(OPS)):
                if OP_SCALE[o] in (prev, prev - 1):
                    yield from rec(prefix + [o], OP_SCALE[o])
        return rec([], STEM_SCALE)

    def sample(self, rng: np.random.Generator) -> tuple:
        """Uniform random operator sequence (each of the 1,703,991 equally likely), default variant genes."""
        ops, prev = [], STEM_SCALE
        for layer in range(NUM_LAYERS):
            cand = [o for o in range(len(OPS)) if OP_SCALE[o] in (prev, prev - 1)]
            w = np.array([self._completions(layer + 1, OP_SCALE[o]) for o in cand], dtype=float)
            o = cand[int(rng.choice(len(cand), p=w / w.sum()))]
            ops.append(o)
            prev = OP_SCALE[o]
        return tuple(ops) + self.default_variant

    @staticmethod
    def _redraw(in_scale: int, rng) -> tuple:
        """A path drawn uniformly from the candidates for an ``in_scale`` input."""
        cand = paths_of_depth(depth_of_scale(in_scale))
        return cand[int(rng.integers(len(cand)))]

    @staticmethod
    def _path_fits(path, in_scale: int) -> bool:
        prev = SCALES.index(in_scale)
        for o in path:
            if OP_SCALE[o] not in (prev, prev - 1):
                return False
            prev = OP_SCALE[o]
        return True

    def mutate(self, arch, prob: float, rng: np.random.Generator) -> tuple:
        """Redraw each block's path with probability ``1 - (1 - prob)^4``, then repair later blocks.

        ``1 - (1 - prob)^4`` is the chance that per-layer mutation with
        ``prob`` touches at least one of the block's 4 layers. The new path is
        uniform among the block's candidates; a later block whose path no
        longer fits its (new) input scale is redrawn too. Variant genes kept.
        """
        g = self.validate(arch)
        paths = self.block_paths(g)
        p_block = 1.0 - (1.0 - float(prob)) ** BLOCK_LAYERS
        in_scale = SCALES[STEM_SCALE]
        for b in range(NUM_BLOCKS):
            if rng.random() < p_block or not self._path_fits(paths[b], in_scale):
                paths[b] = self._redraw(in_scale, rng)
            in_scale = SCALES[OP_SCALE[paths[b][-1]]]
        return tuple(itertools.chain.from_iterable(paths)) + g[NUM_LAYERS:]

    def crossover(self, a, b, rng: np.random.Generator) -> tuple:
        """Block-wise uniform crossover; a block that does not fit its input takes the other parent's, else a redraw.

        Variant genes come from ``a``.
        """
        pa, pb = self.block_paths(a), self.block_paths(b)
        out, in_scale = [], SCALES[STEM_SCALE]
        for blk in range(NUM_BLOCKS):
            first, second = (pa[blk], pb[blk]) if rng.random() < 0.5 else (pb[blk], pa[blk])
            if self._path_fits(first, in_scale):
                path = first
            elif self._path_fits(second, in_scale):
                path = second
            else:
                path = self._redraw(in_scale, rng)
            out.append(path)
            in_scale = SCALES[OP_SCALE[path[-1]]]
        return tuple(itertools.chain.from_iterable(out)) + self.validate(a)[NUM_LAYERS:]

    # -- networks -------------------------------------------------------------
    def build(self, arch, num_classes: int | None = None) -> nn.Module:
        """The BossNet-T retraining network of ``arch`` (:class:`BossNet`). Raises :class:`ArchError`."""
        g = self.validate(arch)
        return BossNet(self.stage_encoding(g), se=bool(g[NUM_LAYERS]), last_stride=g[NUM_LAYERS + 1],
                       num_classes=self.num_classes if num_classes is None else int(num_classes),
                       drop_path_rate=self.drop_path_rate, dropout=self.dropout)

    # -- cost -----------------------------------------------------------------
    def _pieces(self, g: tuple, image_size: int):
        """``(key, module factory, input shape)`` of the stem, every layer / transition and the classifier."""
        se, stride = bool(g[NUM_LAYERS]), g[NUM_LAYERS + 1]
        side = _half(image_size)
        yield (("stem", image_size), lambda: nn.Conv2d(3, STEM_CHANNELS, 7, 2, 3, bias=False),
               (3, image_size, image_size))
        yield ("bn1",), lambda: nn.BatchNorm2d(STEM_CHANNELS), None
        side = _half(side)
        for specs in stage_plan(self.stage_encoding(g), stride):
            for spec in specs:
                key = spec[:5] + (se if spec[0] != "transition" else None, side)
                yield key, (lambda s=spec: make_layer(s, se)), (spec[1], side, side)
                if spec[3] == 2:
                    side = _half(side)
        yield ("fc", self.num_classes), lambda: nn.Linear(NUM_FEATURES, self.num_classes), (NUM_FEATURES,)

    def flops(self, arch, image_size: int | None = None) -> int:
        """MACs of ``arch`` for one ``image_size`` image (default: the space's), per the module's convention.

        Summed from per-layer counts of the real modules (measured once per
        layer shape on the meta device), so no network is built per call.
        """
        g = self.validate(arch)
        size = self.input_size if image_size is None else int(image_size)
        total = 0
        for key, make, shape in self._pieces(g, size):
            if shape is None:
                continue
            if key not in self._macs:
                with torch.device("meta"):
                    self._macs[key] = count_hytra_macs(make(), shape)
            total += self._macs[key]
        return int(total)

    def params(self, arch) -> int:
        """Parameters of the built network (BN affine, conv and classifier biases included)."""
        g = self.validate(arch)
        total = 0
        for key, make, _ in self._pieces(g, self.input_size):
            pkey = key[:-1] if key[0] not in ("bn1", "fc") else key  # parameters do not depend on the map size
            if pkey not in self._params:
                with torch.device("meta"):
                    self._params[pkey] = sum(p.numel() for p in make().parameters())
            total += self._params[pkey]
        return int(total)

    def cost(self, arch) -> tuple[int, int]:
        """``(flops, params)`` of ``arch`` (MACs at ``image_size``, parameter count)."""
        return self.flops(arch), self.params(arch)


__all__ = ["HyTraSpace", "BossNet", "NAMED_ARCHS", "README_MADDS", "BOSSNET_T0_PATHS", "OPS", "OP_NAMES", "SCALES",
           "candidate_paths", "paths_of_depth", "next_depth", "depth_of_scale", "stage_plan"]
