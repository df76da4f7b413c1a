"""NATS-Bench size search space (Ss) and its standalone network.

Source: NATS-Bench (Dong et al., TPAMI 2021, arXiv 2009.00437) size search
space as used by BossNAS ([BOSS] changlin31/BossNAS,
``searching/bossnas/models/supernets/nats_supernet.py`` and
``ranking_nats/nats_cifar10_acc_rank.yml``). The cell topology is fixed (the
best topology-space cell, :data:`GENOTYPE`); 5 layers have a searchable
width, each one of 8, 16, ..., 64 channels, so the space has 8^5 = 32,768
architectures.

An architecture is the tuple of the 5 channel counts, e.g. ``(16, 16, 16, 16, 64)``;
its key is the benchmark's ``'c1:c2:c3:c4:c5'`` string, e.g. ``"16:16:16:16:64"``.

Standalone network (NATS-Bench's size-space network with one cell per stage,
checked against ``xautodl``'s ``DynamicShapeTinyNet`` / ``InferCell`` /
``ResNetBasicblock`` structure), for a ``[N, 3, 32, 32]`` input:

* stem: conv3x3 3 -> c1 (no bias) + BN, 32x32;
* layer 1: cell c1 -> c1 (32x32); layer 2: residual block c1 -> c2, stride 2 (16x16);
  layer 3: cell c2 -> c3 (16x16); layer 4: residual block c3 -> c4, stride 2 (8x8);
  layer 5: cell c4 -> c5 (8x8);
* head: BN(c5) + ReLU, global average pool, ``Linear(c5, num_classes)``.

The cell (4 nodes; node ``j`` sums its incoming edges) has six edges:
``1 <- conv3x3(0)``; ``2 <- conv3x3(0) + conv3x3(1)``; ``3 <- skip(0) +
conv3x3(1) + conv3x3(2)``. ``conv3x3`` is ReLU -> conv (no bias) -> BN; edges
from node 0 map ``c_in -> c_out``, the others ``c_out -> c_out``. ``skip`` is
the identity when ``c_in == c_out`` and otherwise NATS-Bench's stride-1
``FactorizedReduce``: conv1x1 ``c_in -> c_out`` (no bias, no ReLU before it)
+ BN. The residual block is ReLU-conv3x3(stride 2)-BN, ReLU-conv3x3-BN, plus
a shortcut AvgPool2d(2) -> conv1x1 (no bias, no BN).

Cost convention (the repository's): :meth:`NATSSizeSpace.flops` counts
multiply-accumulates of conv and linear layers for one 32x32 image (BN, ReLU,
pooling and bias additions not counted); :meth:`NATSSizeSpace.params` counts
every parameter, BN affine ones and the classifier bias included. Both are
closed-form (no network is built) and are tested against counting built
networks. NATS-Bench's own counter (``xautodl`` ``get_model_infos``) also
adds the classifier bias and the AvgPool2d outputs to its FLOPs; its
parameter count is the same as :meth:`params` (in millions). The BossNAS
accuracy file behind the ``nats_sss/cifar10`` benchmark has no cost data, so
these figures are computed here, not read from NATS-Bench.
"""
from __future__ import annotations

import torch.nn as nn

from ..errors import ArchError
from ..registry import SPACES
from .base import SearchSpace, short_repr

#: Channel choices of every searchable layer (channels, ascending).
CHANNELS = (8, 16, 24, 32, 40, 48, 56, 64)
#: Number of searchable layers.
NUM_LAYERS = 5
#: Datasets this space is defined for (classes per dataset).
VARIANTS = {"cifar10": 10, "cifar100": 100}
#: The fixed cell (best NATS-Bench topology-space cell).
GENOTYPE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
#: Edges of :data:`GENOTYPE` in order: (target node, source node, op).
CELL_EDGES = ((1, 0, "conv"), (2, 0, "conv"), (2, 1, "conv"), (3, 0, "skip"), (3, 1, "conv"), (3, 2, "conv"))
#: Layer kinds: a cell (stride 1) or a residual block (stride 2).
LAYER_KINDS = ("cell", "res", "cell", "res", "cell")
INPUT_SIZE = 32


# ---------------------------------------------------------------------------- standalone network
class ReLUConvBN(nn.Module):
    """ReLU -> conv ``k x k`` (no bias, padding ``k // 2``) -> BN: ``[N, cin, H, W]`` -> ``[N, cout, H/s, W/s]``."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(self.relu(x)))


class ConvBN(nn.Module):
    """NATS-Bench's stride-1 ``FactorizedReduce``: conv1x1 (no bias) -> BN, no activation."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, 1, 0, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


class NATSCell(nn.Module):
    """The fixed cell :data:`GENOTYPE`, ``[N, cin, H, W]`` -> ``[N, cout, H, W]``.

    ``edges[i]`` is the module of :data:`CELL_EDGES` ``[i]``.
    """

    def __init__(self, cin: int, cout: int):
        super().__init__()
        edges = []
        for _, src, op in CELL_EDGES:
            c = cin if src == 0 else cout
            if op == "conv":
                edges.append(ReLUConvBN(c, cout, 3))
            else:
                edges.append(nn.Identity() if c == cout else ConvBN(c, cout))
        self.edges = nn.ModuleList(edges)

    def forward(self, x):
        nodes = [x]
        for node in (1, 2, 3):
            nodes.append(sum(self.edges[i](nodes[src]) for i, (dst, src, _) in enumerate(CELL_EDGES) if dst == node))
        return nodes[-1]


class ResBlock(nn.Module):
    """NATS-Bench residual block, stride 2: ``[N, cin, H, W]`` -> ``[N, cout, H/2, W/2]``."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv_a = ReLUConvBN(cin, cout, 3, 2)
        self.conv_b = ReLUConvBN(cout, cout, 3, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NATSSizeNetwork(nn.Module):
    """Standalone NATS-Bench Ss network of ``channels`` (5 ints): ``[N, 3, H, W]`` -> logits ``[N, num_classes]``.

    ``layers[i]`` is searchable layer ``i`` (:data:`LAYER_KINDS`).
    """

    def __init__(self, channels, num_classes: int = 10):
        super().__init__()
        channels = [int(c) for c in channels]
        self.channels = channels
        self.stem = nn.Sequential(nn.Conv2d(3, channels[0], 3, 1, 1, bias=False), nn.BatchNorm2d(channels[0]))
        layers, cin = [], channels[0]
        for kind, cout in zip(LAYER_KINDS, channels):
            layers.append(NATSCell(cin, cout) if kind == "cell" else ResBlock(cin, cout))
            cin = cout
        self.layers = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, num_classes)

    def forward_features(self, x):
        """Feature map after layer 5 (before the last BN + ReLU): ``[N, c5, H/4, W/4]``."""
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return x

    def forward(self, x):
        return self.classifier(self.pool(self.lastact(self.forward_features(x))).flatten(1))


# ---------------------------------------------------------------------------- closed-form cost
def layer_cost(kind: str, cin: int, cout: int, hw: int) -> tuple[int, int]:
    """``(MACs, params)`` of one searchable layer whose *output* map has ``hw`` pixels."""
    if kind == "cell":
        skip = cin != cout
        w = 2 * 9 * cin * cout + 3 * 9 * cout * cout + (cin * cout if skip else 0)
        bn = 2 * cout * (5 + (1 if skip else 0))
    else:  # residual block: conv_a (3x3, s2), conv_b (3x3), shortcut conv1x1
        w = 9 * cin * cout + 9 * cout * cout + cin * cout
        bn = 2 * 2 * cout
    return w * hw, w + bn


def network_cost(channels, num_classes: int, input_size: int = INPUT_SIZE) -> tuple[int, int]:
    """``(MACs, params)`` of :class:`NATSSizeNetwork` for one ``input_size`` image (see module doc)."""
    hw = input_size * input_size
    c1 = channels[0]
    macs, params = 27 * c1 * hw, 27 * c1 + 2 * c1  # stem conv + BN
    cin = c1
    for kind, cout in zip(LAYER_KINDS, channels):
        if kind == "res":
            input_size = (input_size + 1) // 2  # AvgPool2d(2) floors, conv 3x3 s2 p1 ceils; equal for even sizes
            hw = input_size * input_size
        m, p = layer_cost(kind, cin, cout, hw)
        macs, params, cin = macs + m, params + p, cout
    macs += cin * num_classes
    params += 2 * cin + cin * num_classes + num_classes
    return int(macs), int(params)


# ---------------------------------------------------------------------------- space
@SPACES.register("nats_sss")
class NATSSizeSpace(SearchSpace):
    """NATS-Bench Ss: 5 genes, each a channel count in ``(8, 16, ..., 64)``.

    Args:
        variant: ``"cifar10"`` (default; None/``""`` mean it) or ``"cifar100"``.
            Only CIFAR-10 has a tabular benchmark here (``nats_sss/cifar10``).
        num_classes: classifier outputs (default: 10 or 100 by variant).

    Raises:
        ArchError: unknown variant; malformed keys or out-of-range genes
            (from :meth:`decode` / :meth:`validate`).
    """

    name = "nats_sss/cifar10"
    input_size = INPUT_SIZE
    benchmark = "nats_sss/cifar10"

    def __init__(self, variant: str | None = None, num_classes: int | None = None):
        if variant in (None, ""):
            variant = "cifar10"
        if variant not in VARIANTS:
            raise ArchError(f"nats_sss: unknown variant {variant!r}; use one of {list(VARIANTS)}")
        self.variant = variant
        self.name = f"nats_sss/{variant}"
        self.benchmark = "nats_sss/cifar10" if variant == "cifar10" else None
        self.num_classes = int(VARIANTS[variant] if num_classes is None else num_classes)

    # -- genes ----------------------------------------------------------------
    @property
    def num_genes(self) -> int:
        return NUM_LAYERS

    def choices(self, i: int):
        if not 0 <= int(i) < NUM_LAYERS:
            raise IndexError(f"{self.name}: gene index {i} out of range 0..{NUM_LAYERS - 1}")
        return CHANNELS

    # -- keys -----------------------------------------------------------------
    def encode(self, arch) -> str:
        """Architecture (tuple or key) -> ``'c1:c2:c3:c4:c5'``; raises :class:`ArchError`."""
        return ":".join(str(c) for c in self.validate(arch))

    def decode(self, key) -> tuple:
        """``'c1:c2:c3:c4:c5'`` -> tuple of 5 channel counts.

        Raises:
            ArchError: not 5 ``:``-separated integers, or a count not in 8, 16, ..., 64
                (the message names the key and the bad position).
        """
        if not isinstance(key, str):
            raise ArchError(f"{self.name}: key {short_repr(key)} must be a string 'c1:c2:c3:c4:c5'")
        parts = key.split(":")
        if len(parts) != NUM_LAYERS:
            raise ArchError(f"{self.name}: key {short_repr(key)} must have {NUM_LAYERS} ':'-separated channel counts, "
                            f"got {len(parts)}")
        arch = []
        for i, p in enumerate(parts):
            if not (p.isascii() and p.isdigit()) or len(p) > 9:
                raise ArchError(f"{self.name}: key {short_repr(key)}: layer {i + 1} is {short_repr(p)}, not an "
                                f"integer from {CHANNELS[0]} to {CHANNELS[-1]}")
            c = int(p)
            if c not in CHANNELS:
                raise ArchError(f"{self.name}: key {short_repr(key)}: layer {i + 1} has {c} channels, "
                                f"allowed values are {list(CHANNELS)}")
            arch.append(c)
        return tuple(arch)

    # -- cost and networks ----------------------------------------------------
    def build(self, arch, num_classes: int | None = None) -> NATSSizeNetwork:
        """Standalone :class:`NATSSizeNetwork` of ``arch`` (see module doc)."""
        arch = self.validate(arch)
        return NATSSizeNetwork(arch, self.num_classes if num_classes is None else int(num_classes))

    def cost(self, arch) -> tuple[int, int]:
        """``(flops, params)``: conv + linear MACs for one 32x32 image, and all parameters."""
        return network_cost(self.validate(arch), self.num_classes, self.input_size)

    def flops(self, arch) -> int:
        """Conv + linear MACs of the standalone network for one 32x32 image (closed form)."""
        return self.cost(arch)[0]

    def params(self, arch) -> int:
        """All parameters of the standalone network, BN affine and classifier bias included (closed form)."""
        return self.cost(arch)[1]

    def cost_table(self) -> dict[str, dict]:
        """``{key: {"flops": MACs, "params": count}}`` for all 32,768 architectures."""
        return {self.encode(a): dict(zip(("flops", "params"), network_cost(a, self.num_classes, self.input_size)))
                for a in self}


__all__ = ["NATSSizeSpace", "NATSSizeNetwork", "NATSCell", "ResBlock", "ReLUConvBN", "ConvBN",
           "CHANNELS", "NUM_LAYERS", "GENOTYPE", "CELL_EDGES", "LAYER_KINDS", "network_cost", "layer_cost"]
